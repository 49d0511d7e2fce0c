//! The request/response example, run: every call ends exactly once, also when calls outnumber what the server takes
//! in hand and when the server goes away with calls in flight.
#![allow(clippy::unwrap_used)]

#[allow(dead_code, unreachable_pub)]
#[path = "../examples/request_response.rs"]
mod example;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_is_answered_busy_or_failed_exactly_once() {
    let s = example::demo(3_000, 256, None).await;
    assert_eq!(s.answered + s.busy + s.timed_out + s.failed, s.calls, "{s:?}");
    assert_eq!(s.wrong, 0, "{s:?}");
    assert!(s.answered > 0, "{s:?}");
    assert!(s.busy > 0, "a window of 256 against 64 in hand must meet the limit: {s:?}");
    assert_eq!(s.timed_out, 0, "{s:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_in_flight_when_the_server_goes_away_fail_at_once_instead_of_hanging() {
    let s = example::demo(2_000, 128, Some(1_000)).await;
    assert_eq!(s.answered + s.busy + s.timed_out + s.failed, s.calls, "{s:?}");
    assert!(s.failed >= 1_000, "calls after the stop fail: {s:?}");
    assert_eq!(s.timed_out, 0, "the peer's departure ends its calls, not their 5 s deadline: {s:?}");
}
