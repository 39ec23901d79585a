//! The Prometheus client against a real Prometheus server (it scrapes itself).

mod common;

use std::time::Duration;

use adapters::{Error, QueryResult};
use common::{poll, PrometheusServer};

#[test]
fn typed_results_errors_and_server_down() {
    let mut prom = PrometheusServer::start(None, None);
    let client = prom.client();
    assert!(client.ready().unwrap());
    prom.wait_up("prometheus", 1, Duration::from_secs(60));

    // Instant vector from scraped data: up{job="prometheus"} is 1 with its labels.
    let r = client.query(r#"up{job="prometheus"}"#, None).unwrap();
    let v = r.as_vector();
    assert_eq!(v.len(), 1, "{r:?}");
    assert_eq!(v[0].value, 1.0);
    assert_eq!(v[0].labels["job"], "prometheus");
    assert_eq!(
        v[0].labels["instance"],
        prom.url().trim_start_matches("http://")
    );

    // Evaluation time is honoured (3 decimals).
    let r = client
        .query("vector(time())", Some(1_700_000_000.25))
        .unwrap();
    assert_eq!(r.as_vector()[0].timestamp_s, 1_700_000_000.25);
    assert_eq!(r.as_vector()[0].value, 1_700_000_000.25);

    // Scalars, special values and strings.
    assert!(
        matches!(client.query("2.5", None).unwrap(), QueryResult::Scalar { value, .. } if value == 2.5)
    );
    assert!(client
        .query("0/0", None)
        .unwrap()
        .single_value()
        .unwrap()
        .is_nan());
    assert_eq!(
        client.query("1/0", None).unwrap().single_value(),
        Some(f64::INFINITY)
    );
    assert_eq!(
        client.query("-1/0", None).unwrap().single_value(),
        Some(f64::NEG_INFINITY)
    );
    assert!(matches!(
        client.query("\"hello\"", None).unwrap(),
        QueryResult::String { value, .. } if value == "hello"
    ));

    // Range query: 11 points, 1 s apart, of a constant.
    let end = 1_700_000_010.0;
    let r = client
        .query_range("vector(7)", end - 10.0, end, 1.0)
        .unwrap();
    let m = r.as_matrix();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].points.len(), 11);
    assert_eq!(m[0].points[0], (end - 10.0, 7.0));
    assert_eq!(m[0].points[10], (end, 7.0));

    // Range query over scraped data: up points exist for the last seconds.
    let now = adapters::state::unix_s(std::time::SystemTime::now());
    let r = client
        .query_range(r#"up{job="prometheus"}"#, now - 5.0, now, 1.0)
        .unwrap();
    assert!(r.as_matrix()[0].points.iter().all(|p| p.1 == 1.0), "{r:?}");

    // Bad PromQL: Prometheus' message and the query are kept.
    match client.query("rate(up[", None) {
        Err(e @ Error::BadQuery { .. }) => {
            let Error::BadQuery {
                message,
                query,
                url,
            } = &e
            else {
                unreachable!()
            };
            assert!(message.contains("parse error"), "{message}");
            assert_eq!(query, "rate(up[");
            assert!(url.ends_with("/api/v1/query"), "{url}");
            assert!(e.to_string().contains("rate(up["), "{e}");
        }
        other => panic!("expected BadQuery, got {other:?}"),
    }
    match client.query_range("up", 10.0, 5.0, 1.0) {
        Err(Error::BadQuery { message, .. }) => assert!(message.contains("end"), "{message}"),
        other => panic!("expected BadQuery, got {other:?}"),
    }

    // Server down: unreachable, naming the URL and the query.
    prom.stop();
    match client.query("up", None) {
        Err(e @ Error::PromUnreachable { .. }) => {
            assert!(e.to_string().contains(&prom.url()), "{e}");
            assert!(e.to_string().contains("`up`"), "{e}");
        }
        other => panic!("expected PromUnreachable, got {other:?}"),
    }
    assert!(matches!(client.ready(), Err(Error::PromUnreachable { .. })));

    // Back up on the same TSDB: old data is still there.
    prom.start_again();
    poll(Duration::from_secs(30), "up after restart", || {
        client
            .query(r#"up{job="prometheus"}"#, None)
            .ok()?
            .single_value()
    });
}
