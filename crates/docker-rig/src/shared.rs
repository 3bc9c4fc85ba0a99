//! What a test binary shares: one engine and writer image, and turns, so that at most two rig
//! runs share the machine's two cores with dockerd at a time.

use std::sync::{Condvar, Mutex, OnceLock};

use crate::Engine;

/// The binary's engine (the one at DOCKER_HOST, or ours) and the writer image on it; a test
/// that cannot have them fails saying how to get one.
pub fn engine_and_image() -> &'static (Engine, String) {
    static SHARED: OnceLock<(Engine, String)> = OnceLock::new();
    SHARED.get_or_init(|| {
        let engine = Engine::connect_or_start().unwrap_or_else(|err| panic!("{err:#}"));
        let image = crate::writer_image(&engine).unwrap_or_else(|err| panic!("{err:#}"));
        (engine, image)
    })
}

const AT_ONCE: usize = 2;

/// Held while a rig run goes on.
pub struct Turn(());

impl Turn {
    pub fn wait() -> Turn {
        let (running, freed) = turns();
        let mut count = freed
            .wait_while(running.lock().unwrap_or_else(|p| p.into_inner()), |n| *n >= AT_ONCE)
            .unwrap_or_else(|p| p.into_inner());
        *count += 1;
        Turn(())
    }
}

impl Drop for Turn {
    fn drop(&mut self) {
        let (running, freed) = turns();
        *running.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        freed.notify_one();
    }
}

fn turns() -> &'static (Mutex<usize>, Condvar) {
    static TURNS: OnceLock<(Mutex<usize>, Condvar)> = OnceLock::new();
    TURNS.get_or_init(|| (Mutex::new(0), Condvar::new()))
}
