//! The current trace: where it is set, where it follows, and that it is always restored.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use fabraix::{AgentId, Trace, TraceFutureExt, TraceId, current_trace};
use tokio::task::yield_now;

fn new_trace() -> Trace {
    Trace::new(
        TraceId::from_uuid(uuid::Uuid::new_v4()),
        AgentId::from_name("x").unwrap(),
        chrono::Utc::now(),
    )
}

/// A runtime with a single worker and a single blocking thread, so that a task run after
/// another lands on the same thread and would see anything it left behind.
fn one_thread_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .max_blocking_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn no_trace_outside_a_scope() {
    assert_eq!(current_trace(), None);
}

#[tokio::test]
async fn no_trace_outside_a_scope_in_async_code() {
    assert_eq!(current_trace(), None);
    yield_now().await;
    assert_eq!(current_trace(), None);
}

#[tokio::test]
async fn scope_sets_the_trace_and_restores_the_outer_one() {
    let (outer, inner) = (new_trace(), new_trace());
    let seen = fabraix::scope(outer, async move {
        assert_eq!(current_trace(), Some(outer));
        let seen_inner = fabraix::scope(inner, async move {
            assert_eq!(current_trace(), Some(inner));
            yield_now().await;
            current_trace()
        })
        .await;
        assert_eq!(seen_inner, Some(inner));
        // Back to the outer run once the inner one ends, across an await too.
        assert_eq!(current_trace(), Some(outer));
        yield_now().await;
        current_trace()
    })
    .await;
    assert_eq!(seen, Some(outer));
    assert_eq!(current_trace(), None);
}

#[test]
fn sync_scope_sets_the_trace_and_restores_the_outer_one() {
    let (outer, inner) = (new_trace(), new_trace());
    let seen = fabraix::sync_scope(outer, || {
        assert_eq!(current_trace(), Some(outer));
        let seen_inner = fabraix::sync_scope(inner, current_trace);
        assert_eq!(seen_inner, Some(inner));
        current_trace()
    });
    assert_eq!(seen, Some(outer));
    assert_eq!(current_trace(), None);
}

#[test]
fn sync_scope_restores_the_outer_trace_after_a_panic() {
    let (outer, inner) = (new_trace(), new_trace());
    fabraix::sync_scope(outer, || {
        let caught = catch_unwind(|| {
            fabraix::sync_scope(inner, || -> () {
                assert_eq!(current_trace(), Some(inner));
                panic!("the agent body panicked");
            })
        });
        assert!(caught.is_err());
        assert_eq!(current_trace(), Some(outer));
    });
    let caught = catch_unwind(|| fabraix::sync_scope(inner, || panic!("again")));
    assert!(caught.is_err());
    assert_eq!(current_trace(), None);
}

#[test]
fn scope_restores_the_outer_trace_after_a_panic_in_the_future() {
    let (outer, inner) = (new_trace(), new_trace());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    fabraix::sync_scope(outer, || {
        // A current-thread runtime polls the future on this thread, and the panic unwinds
        // out of `block_on` through the scope.
        let caught = catch_unwind(AssertUnwindSafe(|| {
            runtime.block_on(fabraix::scope(inner, async move {
                assert_eq!(current_trace(), Some(inner));
                yield_now().await;
                panic!("the agent body panicked");
            }))
        }));
        assert!(caught.is_err());
        assert_eq!(current_trace(), Some(outer));
    });
    assert_eq!(current_trace(), None);
}

#[tokio::test]
async fn sync_scope_inside_scope_restores_the_async_trace() {
    let (outer, inner) = (new_trace(), new_trace());
    fabraix::scope(outer, async move {
        assert_eq!(fabraix::sync_scope(inner, current_trace), Some(inner));
        assert_eq!(current_trace(), Some(outer));
        yield_now().await;
        assert_eq!(current_trace(), Some(outer));
    })
    .await;
}

#[tokio::test]
async fn a_dropped_scope_leaves_nothing_behind() {
    let trace = new_trace();
    let mut pending = Box::pin(fabraix::scope(trace, std::future::pending::<()>()));
    tokio::select! {
        biased;
        _ = &mut pending => unreachable!(),
        _ = std::future::ready(()) => {}
    }
    assert_eq!(current_trace(), None);
    drop(pending);
    assert_eq!(current_trace(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bare_tokio_spawn_does_not_carry_the_trace() {
    let trace = new_trace();
    fabraix::scope(trace, async move {
        let seen = tokio::spawn(async { current_trace() }).await.unwrap();
        assert_eq!(seen, None);
        let seen = tokio::task::spawn_blocking(current_trace).await.unwrap();
        assert_eq!(seen, None);
        assert_eq!(current_trace(), Some(trace));
    })
    .await;
}

#[tokio::test]
async fn bare_tokio_spawn_does_not_carry_the_trace_on_a_current_thread_runtime() {
    let trace = new_trace();
    fabraix::scope(trace, async move {
        // The task runs on this very thread, while the scope's future waits for it.
        let seen = tokio::spawn(async { current_trace() }).await.unwrap();
        assert_eq!(seen, None);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_current_trace_carries_the_trace_into_a_task() {
    let trace = new_trace();
    let seen = fabraix::scope(trace, async move {
        tokio::spawn(
            async {
                let before = current_trace();
                yield_now().await;
                (before, current_trace())
            }
            .in_current_trace(),
        )
        .await
        .unwrap()
    })
    .await;
    assert_eq!(seen, (Some(trace), Some(trace)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_current_trace_outside_a_scope_carries_none() {
    let seen = tokio::spawn(async { current_trace() }.in_current_trace())
        .await
        .unwrap();
    assert_eq!(seen, None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_sets_the_given_trace_in_a_task() {
    let (outer, given) = (new_trace(), new_trace());
    fabraix::scope(outer, async move {
        let seen = tokio::spawn(fabraix::scope(given, async {
            yield_now().await;
            current_trace()
        }))
        .await
        .unwrap();
        assert_eq!(seen, Some(given));
        assert_eq!(current_trace(), Some(outer));
    })
    .await;
    let seen = tokio::spawn(fabraix::scope(given, async { current_trace() }))
        .await
        .unwrap();
    assert_eq!(seen, Some(given));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabraix_spawn_carries_the_trace() {
    let trace = new_trace();
    let seen = fabraix::scope(trace, async move {
        fabraix::spawn(async {
            yield_now().await;
            // And on into a task the task spawns.
            let nested = fabraix::spawn(async { current_trace() }).await.unwrap();
            (current_trace(), nested)
        })
        .await
        .unwrap()
    })
    .await;
    assert_eq!(seen, (Some(trace), Some(trace)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fabraix_spawn_blocking_carries_the_trace() {
    let trace = new_trace();
    let seen = fabraix::scope(trace, async move {
        fabraix::spawn_blocking(current_trace).await.unwrap()
    })
    .await;
    assert_eq!(seen, Some(trace));
}

#[test]
fn spawned_tasks_leave_no_trace_on_their_threads() {
    let runtime = one_thread_runtime();
    let trace = new_trace();
    runtime.block_on(async move {
        fabraix::scope(trace, async move {
            assert_eq!(
                fabraix::spawn(async { current_trace() }).await.unwrap(),
                Some(trace)
            );
            assert_eq!(
                fabraix::spawn_blocking(current_trace).await.unwrap(),
                Some(trace)
            );
        })
        .await;
        // The same worker and the same blocking thread, now outside any run.
        assert_eq!(tokio::spawn(async { current_trace() }).await.unwrap(), None);
        assert_eq!(
            tokio::task::spawn_blocking(current_trace).await.unwrap(),
            None
        );
    });
}

#[test]
fn sync_scope_carries_a_trace_into_a_thread() {
    let trace = new_trace();
    let captured = fabraix::sync_scope(trace, current_trace).unwrap();
    let seen = std::thread::spawn(move || {
        let before = current_trace();
        let inside = fabraix::sync_scope(captured, current_trace);
        (before, inside, current_trace())
    })
    .join()
    .unwrap();
    assert_eq!(seen, (None, Some(trace), None));
}

#[test]
fn scope_carries_a_trace_into_another_runtime() {
    let trace = new_trace();
    let seen = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(fabraix::scope(trace, async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            current_trace()
        }))
    })
    .join()
    .unwrap();
    assert_eq!(seen, Some(trace));
}

async fn each_task_sees_only_its_own_trace(tasks: usize) {
    let mut handles = Vec::with_capacity(tasks);
    for i in 0..tasks {
        let trace = new_trace();
        handles.push(tokio::spawn(fabraix::scope(trace, async move {
            for round in 0..20 {
                assert_eq!(current_trace(), Some(trace), "task {i}, round {round}");
                yield_now().await;
                if round % 5 == 0 {
                    let child = fabraix::spawn(async { current_trace() }).await.unwrap();
                    assert_eq!(child, Some(trace), "task {i}'s child");
                }
            }
            trace
        })));
    }
    let mut seen = std::collections::HashSet::new();
    for handle in handles {
        seen.insert(handle.await.unwrap().trace_id());
    }
    assert_eq!(seen.len(), tasks);
    assert_eq!(current_trace(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_tasks_each_see_only_their_own_trace() {
    each_task_sees_only_its_own_trace(200).await;
}

#[tokio::test]
async fn concurrent_tasks_each_see_only_their_own_trace_on_one_thread() {
    each_task_sees_only_its_own_trace(200).await;
}

#[test]
fn trace_is_copy_and_shows_its_trace_id() {
    let trace = new_trace();
    let copy = trace;
    assert_eq!(trace, copy);
    assert_eq!(trace.to_string(), trace.trace_id().to_string());
    assert_eq!(trace.agent_id(), AgentId::from_name("x").unwrap());
    let shown = format!("{trace:?}");
    assert!(shown.contains(&trace.trace_id().to_string()), "{shown}");
}
