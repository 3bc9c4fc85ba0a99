//! What a Loki outage costs in lines, on a real Docker engine (issue 29): a follower that reads
//! the way Alloy's loki.source.docker does stalls for the outage, against json-file logs shaped
//! as before and as the plan gives them now (infra/modules/temporal-service, infra/log-buffer.tf).
//! Sizes are scaled down: a stall covers 15,000 lines of 350 bytes, about 6.3 MB as json-file
//! stores them; 6600k files rotate once during it (1 MB was written before it), so a case with
//! them shows what a rotation under a blocked reader does.

use docker_rig::{Case, Outcome};

/// Lines written while the reader is stalled: 3 s of the rig's rate.
const STALL: u64 = 15_000;

fn run(case: &Case) -> Outcome {
    let (engine, image) = docker_rig::shared::engine_and_image();
    let _turn = docker_rig::shared::Turn::wait();
    let began = std::time::Instant::now();
    let outcome = docker_rig::rig::run(engine, image, case).unwrap_or_else(|err| panic!("{err:#}"));
    eprintln!("{} {:?}: {outcome} ({:.1} s)", case.log_driver, case.log_options, began.elapsed().as_secs_f64());
    outcome
}

#[test]
fn the_old_ring_of_five_compressed_files_loses_lines_to_a_blocked_follower() {
    // 17.3's shape: five compressed files holding the outage with a quarter to spare.
    let outcome =
        run(&Case::outage("json-file", &[("max-size", "1600k"), ("max-file", "5"), ("compress", "true")], STALL));
    assert!(outcome.lost_by_docker() > 0 || outcome.stuck, "{outcome}");
}

#[test]
fn one_uncompressed_file_larger_than_the_outage_loses_nothing() {
    let outcome =
        run(&Case::outage("json-file", &[("max-size", "6600k"), ("max-file", "2"), ("compress", "false")], STALL));
    assert_eq!((outcome.lost_lines(), outcome.stuck), (0, false), "{outcome}");
    assert_eq!(outcome.delivered, outcome.written);
}

#[test]
fn an_outage_longer_than_one_file_loses_lines_whatever_the_ring_holds() {
    // Ten files hold it all on disk; the blocked follower still skips the ones rotated past it.
    let outcome =
        run(&Case::outage("json-file", &[("max-size", "1200k"), ("max-file", "10"), ("compress", "false")], STALL));
    assert!(outcome.lost_by_docker() > 0, "{outcome}");
}

#[test]
fn a_reader_restarted_mid_outage_loses_only_what_it_held_in_memory() {
    // No rotation here: see the next test for one while the reopened stream catches up.
    let mut case =
        Case::outage("json-file", &[("max-size", "16000k"), ("max-file", "2"), ("compress", "false")], STALL);
    case.restart_reader_at_line = Some(Case::BEFORE_STALL + STALL / 2);
    let outcome = run(&case);
    assert!(!outcome.stuck, "{outcome}");
    assert_eq!(outcome.lost_by_docker(), 0, "{outcome}");
    // Its queue was full when it restarted; the reopened stream replays the position's whole
    // second, so how many of those come back depends on where the second began.
    assert!(outcome.lost_lines() <= case.queue_lines as u64, "{outcome}");
}

#[test]
fn a_reader_reopened_mid_outage_is_stranded_when_the_file_rotates_before_it_catches_up() {
    // dockerd 20.10 reads a reopened stream's backlog before it watches for rotations: a rotation
    // meanwhile leaves the stream on the old file, silent. The README states this loss path;
    // this test shows it on the engine it runs on (a newer engine that fixes it fails here, and
    // the README's caveat should then go).
    let mut case = Case::outage("json-file", &[("max-size", "6600k"), ("max-file", "2"), ("compress", "false")], STALL);
    case.restart_reader_at_line = Some(Case::BEFORE_STALL + STALL / 2);
    let outcome = run(&case);
    assert!(outcome.stuck && outcome.lost_by_docker() > 0, "{outcome}");
}

#[test]
fn a_container_stopped_mid_outage_never_has_the_rest_of_its_backlog_read() {
    // The planned shape holds the outage, but Docker ends the stream when the container stops:
    // the reader finishes the file it holds and never opens the newer one.
    let mut case = Case::outage("json-file", &[("max-size", "6600k"), ("max-file", "2"), ("compress", "false")], STALL);
    case.stop_at_stall_end = true;
    let outcome = run(&case);
    assert!(outcome.lost_by_docker() > 0, "{outcome}");
}
