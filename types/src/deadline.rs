//! Optional deadlines for `select!` loops.

use tokio::time::Instant;

/// Sleeps until `deadline`, or forever if there is none: the timer arm of a loop whose next deadline may not exist.
pub async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(t) => tokio::time::sleep_until(t).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn waits_for_the_deadline_or_forever() {
        let t0 = Instant::now();
        sleep_until(Some(t0 + Duration::from_secs(3))).await;
        assert_eq!(Instant::now() - t0, Duration::from_secs(3));
        let never = tokio::time::timeout(Duration::from_secs(3600), sleep_until(None)).await;
        assert!(never.is_err(), "no deadline never fires");
    }
}
