//! The client must never be the cause of a 429: 300 concurrent calls against a simulator
//! limited to 60 per window. The window is 1 s instead of 60 s (same ratio, 60× faster).

mod forge_support;

use forge_support::*;
use std::sync::Arc;
use std::time::{Duration, Instant};
use switchyard::forge::{ForgeApi, RateLimit};
use switchyard_sim::forge::TokenSpec;

const CALLS: usize = 300;
const LIMIT: u32 = 60;
const WINDOW: Duration = Duration::from_millis(1000);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_hundred_concurrent_calls_never_cause_a_429() {
    let token = unique_token("rate");
    let sim = sim_with(vec![TokenSpec::all_scopes(token.clone())], |c| {
        c.rate_limit = LIMIT;
        c.rate_window = WINDOW;
    })
    .await;
    let rate = RateLimit::new(LIMIT, WINDOW);
    let api: Arc<dyn ForgeApi> = Arc::new(client_with(&sim.base_url(), &token, |c| c.rate_limit = rate));

    let start = Instant::now();
    let calls: Vec<_> = (0..CALLS)
        .map(|i| {
            let api = api.clone();
            tokio::spawn(async move {
                if i % 2 == 0 { api.get_server(1).await.map(drop) } else { api.list_databases(1, None).await.map(drop) }
            })
        })
        .collect();
    for c in calls {
        c.await.expect("task").expect("call succeeds");
    }
    let elapsed = start.elapsed();

    // Burst-bucket semantics: `burst` go at once, the rest at the nominal rate.
    let theoretical = WINDOW.mul_f64((CALLS as u32 - rate.burst) as f64 / LIMIT as f64);
    let ratio = elapsed.as_secs_f64() / theoretical.as_secs_f64();
    let throttled = sim.status_count(429);
    println!(
        "{CALLS} calls at {LIMIT}/{WINDOW:?}: {elapsed:.3?} vs theoretical minimum {theoretical:.3?} (ratio {ratio:.3}, safety margin {:.0}%); 429s seen by the simulator: {throttled}",
        rate.safety_margin * 100.0
    );
    assert_eq!(sim.requests().len(), CALLS);
    assert_eq!(throttled, 0, "the client caused 429s");
    assert!(ratio >= 0.99, "faster than the limit allows: {ratio}");
    assert!(ratio <= 1.10, "more than 10% slower than the theoretical minimum: {ratio}");
}
