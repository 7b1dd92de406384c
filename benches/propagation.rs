//! What carrying a run across processes costs per request: writing the headers on the
//! way out, reading them on the way in, next to OpenTelemetry's own propagator doing the
//! same for its trace context.
//!
//! ```text
//! cargo bench --bench propagation --all-features
//! ```

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use fabraix::propagation;
use fabraix::{AgentId, Trace, TraceId};
use http::{HeaderMap, HeaderValue};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TraceContextExt;
use opentelemetry_sdk::propagation::TraceContextPropagator;

fn trace() -> Trace {
    Trace::new(
        TraceId::from_uuid(uuid::Uuid::new_v4()),
        AgentId::from_name("bench").expect("a name"),
        "2024-01-15T14:30:45.123Z".parse().expect("a time"),
    )
}

fn inject(c: &mut Criterion) {
    let trace = trace();
    let mut group = c.benchmark_group("inject");
    group.bench_function("fabraix into an empty HeaderMap", |b| {
        b.iter(|| {
            let mut headers = HeaderMap::new();
            propagation::inject(black_box(&trace), &mut headers);
            headers
        })
    });
    group.bench_function("fabraix merged into 3 baggage members", |b| {
        let mut base = HeaderMap::new();
        base.insert(
            "baggage",
            HeaderValue::from_static("userId=alice,serverNode=DF%2028,isProduction=false"),
        );
        b.iter(|| {
            let mut headers = base.clone();
            propagation::inject(black_box(&trace), &mut headers);
            headers
        })
    });
    group.bench_function("opentelemetry traceparent into a HashMap", |b| {
        let propagator = TraceContextPropagator::new();
        let mut carrier = HashMap::new();
        propagation::inject(&trace, &mut carrier);
        let cx = propagator.extract(&carrier);
        b.iter(|| {
            let mut out = HashMap::new();
            propagator.inject_context(black_box(&cx), &mut out);
            out
        })
    });
    group.finish();
}

fn extract(c: &mut Criterion) {
    let trace = trace();
    let mut headers = HeaderMap::new();
    propagation::inject(&trace, &mut headers);
    let mut carrier = HashMap::new();
    propagation::inject(&trace, &mut carrier);
    let mut group = c.benchmark_group("extract");
    group.bench_function("fabraix from a HeaderMap", |b| {
        b.iter(|| propagation::extract(black_box(&headers)))
    });
    group.bench_function("opentelemetry traceparent from a HashMap", |b| {
        let propagator = TraceContextPropagator::new();
        b.iter(|| {
            propagator
                .extract(black_box(&carrier))
                .span()
                .span_context()
                .trace_id()
        })
    });
    group.finish();
}

criterion_group!(benches, inject, extract);
criterion_main!(benches);
