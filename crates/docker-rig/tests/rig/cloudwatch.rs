//! During the parallel run the main container logs to CloudWatch (awslogs, moto here) and Alloy
//! reads Docker's dual-logging cache: what each side gets when Loki is away, and when
//! CloudWatch does not answer for a while, with the awslogs options the plan sets.

use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use docker_rig::cloudwatch::{create_log_group, settled_line_counts, HoldingProxy};

/// Longer than the rig's 1 s flush interval and a batch's answer.
const QUIET: Duration = Duration::from_secs(2);
use docker_rig::{Case, Outcome};

fn moto() -> &'static standins::MotoServer {
    let python = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../.tools/venv/bin/python");
    assert!(python.exists(), "{} is missing: run `cargo xtask test` once, which installs moto", python.display());
    standins::MotoServer::shared(&python)
}

fn moto_port() -> u16 {
    moto().endpoint().rsplit(':').next().unwrap().parse().unwrap()
}

/// The reader's outcome and how many of the lines CloudWatch holds; `proxy`, if any, lets
/// CloudWatch answer once the reader has every line (all were written by then).
fn run(case: &Case, stream: &str, proxy: Option<&HoldingProxy>) -> (Outcome, usize) {
    let (engine, image) = docker_rig::shared::engine_and_image();
    let _turn = docker_rig::shared::Turn::wait();
    let began = std::time::Instant::now();
    // The container runs on until CloudWatch has all, or nothing more for longer than a batch takes.
    let (outcome, counts) = docker_rig::rig::run_then(engine, image, case, || {
        if let Some(proxy) = proxy {
            proxy.release();
        }
        settled_line_counts(moto_port(), "rig", stream, case.lines, QUIET)
    })
    .unwrap_or_else(|err| panic!("{err:#}"));
    eprintln!(
        "{:?}: reader {outcome}; CloudWatch holds {} of {} ({:.1} s)",
        case.log_options,
        counts.len(),
        case.lines,
        began.elapsed().as_secs_f64()
    );
    (outcome, counts.len())
}

fn awslogs(endpoint: &str, stream: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    static GROUP: OnceLock<()> = OnceLock::new();
    GROUP.get_or_init(|| create_log_group(moto_port(), "rig").unwrap_or_else(|err| panic!("{err:#}")));
    let mut options = vec![
        ("awslogs-group".to_string(), "rig".to_string()),
        ("awslogs-region".to_string(), "us-east-1".to_string()),
        ("awslogs-stream".to_string(), stream.to_string()),
        ("awslogs-endpoint".to_string(), endpoint.to_string()),
        // Timing only: a batch goes within 1 s rather than 5, so the counts settle sooner.
        ("awslogs-force-flush-interval-seconds".to_string(), "1".to_string()),
    ];
    options.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    options
}

fn case(options: &[(String, String)], stall_lines: u64) -> Case {
    let borrowed: Vec<(&str, &str)> = options.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    Case::outage("awslogs", &borrowed, stall_lines)
}

/// Lines written while CloudWatch does not answer: past the default queue of 4,096 and the
/// batch in flight, within the planned one.
const UNANSWERED: u64 = 5_000;

#[test]
fn an_unanswering_cloudwatch_drops_lines_past_the_default_awslogs_queue_whatever_max_buffer_size() {
    let proxy = HoldingProxy::start_holding(moto_port()).unwrap();
    // The plan's options before issue 29: the ring at 25m, the driver's queue at its default.
    let options = awslogs(&proxy.endpoint(), "default-queue", &[("mode", "non-blocking"), ("max-buffer-size", "25m")]);
    let case = case(&options, UNANSWERED);
    let (outcome, in_cloudwatch) = run(&case, "default-queue", Some(&proxy));
    assert!((in_cloudwatch as u64) < case.lines, "CloudWatch holds all {in_cloudwatch}");
    // The dual-logging cache is written first: Alloy still reads every line.
    assert_eq!(outcome.lost_lines(), 0, "{outcome}");
}

#[test]
fn the_planned_awslogs_queue_holds_while_cloudwatch_does_not_answer() {
    let proxy = HoldingProxy::start_holding(moto_port()).unwrap();
    // infra/log-buffer.tf: 10 s of the rate in lines, here the rig's rate.
    let events = (10 * Case::RATE).to_string();
    let options = awslogs(
        &proxy.endpoint(),
        "planned-queue",
        &[("mode", "non-blocking"), ("max-buffer-size", "25m"), ("awslogs-max-buffered-events", &events)],
    );
    let case = case(&options, UNANSWERED);
    let (outcome, in_cloudwatch) = run(&case, "planned-queue", Some(&proxy));
    assert_eq!((in_cloudwatch as u64, outcome.lost_lines()), (case.lines, 0), "{outcome}");
}

#[test]
fn dockerd_ignores_the_dual_logging_cache_size_options() {
    // Were the cache 2 files of 1 MB, a reader stalled for 6.4 MB of lines would lose most of
    // them (as json-file does, log_loss.rs); dockerd keeps its 20 MiB files, and none is lost.
    let options = awslogs(
        &moto().endpoint(),
        "cache-options",
        &[("cache-max-size", "1m"), ("cache-max-file", "2"), ("cache-compress", "false")],
    );
    let (outcome, _) = run(&case(&options, 15_000), "cache-options", None);
    assert_eq!((outcome.lost_lines(), outcome.stuck), (0, false), "{outcome}");
}
