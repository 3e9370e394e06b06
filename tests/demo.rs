//! `isdown demo` end to end: the real binary tells the whole story offline — an outage opens an
//! incident, the console channel alerts, agents fail over with no failed request, a batch for
//! Kimi alone waits out the outage and completes after recovery.

mod support;

use support::*;

#[test]
fn the_demo_fails_over_with_zero_failed_requests_and_narrates_it() {
    let out = isdown(
        &["demo", "--listen", "127.0.0.1:0", "--exit-when-done"],
        &[],
    );
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}\n{}", stderr(&out));
    for expected in [
        "All three providers are up",
        "Taking Kimi down",
        "Incident opened after",
        "ALERT (console channel): 🔴 [Opened] Kimi (simulated) is DOWN",
        "Fail over to DeepSeek (simulated)",
        "Agents failed over while Kimi is down: ",
        "ALERT (console channel): ✅ [Resolved]",
        "Incident closed",
        "Agents are back on Kimi.",
        "A nightly job submits a batch of 200 requests for \"kimi-batch\"",
        "The batch waits while Kimi is down: in_progress, 0 of 200 lines answered, 0 sent to Kimi.",
        "200 of 200 lines answered by Kimi (200), 200 distinct custom_ids",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
    let done = text.lines().find(|l| l.contains("Done: ")).unwrap();
    assert!(done.contains(" 0 failed"), "{done}");
    assert!(done.contains("DeepSeek"), "{done}");
    let failover = text
        .lines()
        .find(|l| l.contains("Agents failed over while Kimi is down"))
        .unwrap();
    assert!(failover.contains("to DeepSeek"), "{failover}");
}
