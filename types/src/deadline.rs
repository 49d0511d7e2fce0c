//! Optional deadlines for `select!` loops.

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

/// Sleeps until `deadline`, or forever if there is none: the timer arm of a loop whose next deadline may not exist.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

/// One reusable timer for a `select!` loop whose next deadline changes every turn: set it to the state machine's
/// next deadline, then wait on it in the loop. Moving the deadline does not allocate.
#[derive(Debug)]
pub struct Timer {
    sleep: Pin<Box<Sleep>>,
    armed: bool,
}

impl Default for Timer {
    fn default() -> Self {
        Self::new()
    }
}

impl Timer {
    /// A timer with no deadline.
    pub fn new() -> Self {
        // A day is only a placeholder: an unarmed timer never fires.
        Timer { sleep: Box::pin(tokio::time::sleep(Duration::from_secs(86_400))), armed: false }
    }

    /// Sets the deadline (`None`: never fire).
    pub fn set(&mut self, deadline: Option<Instant>) {
        self.armed = deadline.is_some();
        if let Some(t) = deadline
            && self.sleep.deadline() != t
        {
            self.sleep.as_mut().reset(t);
        }
    }

    /// Waits for the deadline, or forever if there is none.
    pub async fn wait(&mut self) {
        if self.armed {
            self.sleep.as_mut().await;
        } else {
            std::future::pending::<()>().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_deadline_or_forever() {
        let t0 = Instant::now();
        sleep_until(Some(t0 + Duration::from_secs(3))).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(3));
        let never = tokio::time::timeout(Duration::from_secs(3600), sleep_until(None)).await;
        assert!(never.is_err(), "no deadline never fires");
    }

    #[tokio::test(start_paused = true)]
    async fn a_timer_follows_its_latest_deadline() {
        let t0 = Instant::now();
        let mut timer = Timer::new();
        timer.set(Some(t0 + Duration::from_secs(5)));
        timer.set(Some(t0 + Duration::from_secs(2)));
        timer.wait().await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(2));
        timer.set(None);
        assert!(tokio::time::timeout(Duration::from_secs(3600), timer.wait()).await.is_err());
        timer.set(Some(Instant::now()));
        timer.wait().await; // a deadline that has passed fires at once
    }
}
