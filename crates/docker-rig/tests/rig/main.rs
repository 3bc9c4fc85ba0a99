//! The rig's cases, one test binary so that two run at a time across all of them
//! (docker_rig::shared::Turn).

mod cloudwatch;
mod log_loss;

#[test]
fn docker_timestamps_give_their_unix_second() {
    use docker_rig::rig::unix_second;
    assert_eq!(unix_second("1970-01-01T00:00:00.5Z"), Some(0));
    assert_eq!(unix_second("2026-12-07T10:56:00.123456789Z"), Some(1_796_640_960));
    assert_eq!(unix_second("2024-02-29T23:59:59Z"), Some(1_709_251_199));
    assert_eq!(unix_second("garbage"), None);
}
