//! Timing machinery shared by all cases.
//!
//! A *case* is one workload (e.g. `sentry/capture_message`); it has several
//! *contenders* (one per SDK / configuration). Each contender is a closure
//! that runs the workload `iters` times and returns the elapsed wall time of
//! exactly the measured part. The harness
//!
//! 1. calibrates `iters` per contender so one batch takes about
//!    [`Settings::batch_target`] (this doubles as warmup),
//! 2. runs one extra warmup batch per contender,
//! 3. runs [`Settings::rounds`] rounds; in every round each contender runs one
//!    batch, and the order of contenders rotates from round to round so no SDK
//!    always runs first (or right after the same neighbour) on a noisy box,
//! 4. reports the median ns/op over rounds (plus min and max).

use std::time::{Duration, Instant};

/// Contender name reserved for sentry-lite's own implementation.
pub(crate) const OURS: &str = "ours";

/// Runs the workload `iters` times and returns the time of the measured part.
pub(crate) type BatchFn = Box<dyn FnMut(u64) -> Duration>;

/// Optional post-run note of a contender (e.g. "exported=… dropped=…").
pub(crate) type NoteFn = Box<dyn Fn() -> String>;

/// One SDK/configuration running a case.
pub(crate) struct Contender {
    pub(crate) name: String,
    pub(crate) run: BatchFn,
    pub(crate) note: Option<NoteFn>,
}

impl Contender {
    pub(crate) fn new(name: impl Into<String>, run: BatchFn) -> Self {
        Self { name: name.into(), run, note: None }
    }

    pub(crate) fn with_note(mut self, note: NoteFn) -> Self {
        self.note = Some(note);
        self
    }
}

/// One workload measured across several contenders.
pub(crate) struct Case {
    pub(crate) name: String,
    /// Operations done by one iteration (ns/op = time / (iters * ops_per_iter)).
    /// E.g. a trace of one root and 10 children counts 11 spans per iteration.
    pub(crate) ops_per_iter: u64,
    pub(crate) contenders: Vec<Contender>,
}

impl Case {
    pub(crate) fn new(name: impl Into<String>) -> Self {
        Self { name: name.into(), ops_per_iter: 1, contenders: Vec::new() }
    }

    pub(crate) fn ops_per_iter(mut self, ops: u64) -> Self {
        self.ops_per_iter = ops;
        self
    }

    /// Adds the "ours" contender, first.
    pub(crate) fn ours(mut self, mut c: Contender) -> Self {
        c.name = OURS.to_owned();
        self.contenders.insert(0, c);
        self
    }

    pub(crate) fn peer(mut self, c: Contender) -> Self {
        self.contenders.push(c);
        self
    }
}

/// Knobs; `--quick` shrinks them.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Settings {
    pub(crate) rounds: usize,
    pub(crate) batch_target: Duration,
    /// Duration of one load-generator run per contender per round (axum).
    pub(crate) load_duration: Duration,
    pub(crate) load_rounds: usize,
    pub(crate) load_connections: usize,
}

impl Settings {
    pub(crate) fn full() -> Self {
        Self {
            rounds: 15,
            batch_target: Duration::from_millis(40),
            load_duration: Duration::from_secs(2),
            load_rounds: 5,
            load_connections: 32,
        }
    }

    pub(crate) fn quick() -> Self {
        Self {
            rounds: 7,
            batch_target: Duration::from_millis(12),
            load_duration: Duration::from_millis(600),
            load_rounds: 3,
            load_connections: 16,
        }
    }
}

/// Result of one contender in one case.
#[derive(Clone, Debug)]
pub(crate) struct Stat {
    pub(crate) name: String,
    pub(crate) median_ns: f64,
    pub(crate) min_ns: f64,
    pub(crate) max_ns: f64,
    pub(crate) iters: u64,
    pub(crate) note: Option<String>,
}

pub(crate) fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

/// Find `iters` such that one batch takes roughly `target`. Also warms up.
///
/// Uses the *fastest* per-op time seen among batches long enough to time
/// reliably (>= 200 µs), so one preempted batch on a noisy box cannot shrink
/// the batch size to a handful of iterations.
fn calibrate(run: &mut BatchFn, target: Duration) -> u64 {
    let mut iters = 1u64;
    let mut best = f64::INFINITY;
    let mut fallback = f64::INFINITY;
    loop {
        let t = run(iters);
        let per = t.as_secs_f64() / iters as f64;
        fallback = fallback.min(per);
        if t >= Duration::from_micros(200) {
            best = best.min(per);
        }
        if t >= target / 4 || iters >= 1 << 30 {
            // one more sample at this size to get a second opinion
            let t2 = run(iters);
            best = best.min(t2.as_secs_f64() / iters as f64);
            let per = if best.is_finite() { best } else { fallback };
            let want = (target.as_secs_f64() / per.max(1e-10)).round() as u64;
            return want.clamp(1, 1 << 32);
        }
        iters *= 2;
    }
}

/// Run one case: calibrate, warm up, then alternate contenders round by round.
pub(crate) fn run_case(case: &mut Case, s: &Settings) -> Vec<Stat> {
    let n = case.contenders.len();
    let mut iters = vec![0u64; n];
    for (i, c) in case.contenders.iter_mut().enumerate() {
        iters[i] = calibrate(&mut c.run, s.batch_target);
        // Warmup at final size. If calibration was skewed by a cold first
        // call (e.g. symbol loading for stack traces) the batch is now much
        // shorter than the target: re-derive the size from this batch.
        let t = (c.run)(iters[i]);
        if t < s.batch_target / 2 {
            let per = t.as_secs_f64().max(1e-9) / iters[i] as f64;
            iters[i] = ((s.batch_target.as_secs_f64() / per).round() as u64).clamp(1, 1 << 32);
            std::hint::black_box((c.run)(iters[i]));
        }
    }
    let mut samples: Vec<Vec<f64>> = vec![Vec::with_capacity(s.rounds); n];
    let ops = case.ops_per_iter.max(1) as f64;
    for round in 0..s.rounds {
        for k in 0..n {
            let i = (k + round) % n; // rotate the starting contender
            let c = &mut case.contenders[i];
            let t = (c.run)(iters[i]);
            samples[i].push(t.as_nanos() as f64 / (iters[i] as f64 * ops));
        }
    }
    case.contenders
        .iter()
        .zip(samples)
        .zip(iters)
        .map(|((c, mut v), it)| {
            let min = v.iter().copied().fold(f64::INFINITY, f64::min);
            let max = v.iter().copied().fold(0.0, f64::max);
            Stat {
                name: c.name.clone(),
                median_ns: median(&mut v),
                min_ns: min,
                max_ns: max,
                iters: it,
                note: c.note.as_ref().map(|f| f()),
            }
        })
        .collect()
}

/// Time `iters` calls of `f`, black-boxing each result.
#[inline]
pub(crate) fn time_loop<R>(iters: u64, mut f: impl FnMut(u64) -> R) -> Duration {
    let start = Instant::now();
    for i in 0..iters {
        std::hint::black_box(f(std::hint::black_box(i)));
    }
    start.elapsed()
}

/// Time `iters` calls of `f`, in chunks of at most `chunk`, calling `setup`
/// (untimed) before each chunk and `teardown` (untimed) after it. Used for
/// "child span" cases where a parent must be recycled every N children so
/// per-trace span limits (sentry keeps at most 1 000 spans) do not kick in.
/// [`time_chunked`], with an untimed `settle` (a flush) after every `per_settle`
/// chunks: for cases that measure work the pipeline behind it keeps up with.
pub(crate) fn time_chunked_settled<S, R>(
    iters: u64,
    chunk: u64,
    per_settle: u64,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(&S, u64) -> R,
    mut teardown: impl FnMut(S),
    mut settle: impl FnMut(),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = (chunk * per_settle).min(iters - done);
        total += time_chunked(n, chunk, &mut setup, &mut f, &mut teardown);
        settle();
        done += n;
    }
    total
}

pub(crate) fn time_chunked<S, R>(
    iters: u64,
    chunk: u64,
    mut setup: impl FnMut() -> S,
    mut f: impl FnMut(&S, u64) -> R,
    mut teardown: impl FnMut(S),
) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0;
    while done < iters {
        let n = chunk.min(iters - done);
        let st = setup();
        let start = Instant::now();
        for i in 0..n {
            std::hint::black_box(f(&st, std::hint::black_box(i)));
        }
        total += start.elapsed();
        teardown(st);
        done += n;
    }
    total
}
