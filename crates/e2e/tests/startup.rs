//! Services start in any order: before their dependencies are up they run, answer
//! `/readyz` with 503 naming what is missing, and become ready by themselves once it is.

use e2e::{create_database, infra, start_alone};
use serde_json::Value;
use std::time::Duration;

async fn readyz(port: u16) -> Option<(u16, Value)> {
    let response = reqwest::Client::builder()
        .no_proxy()
        .build()
        .ok()?
        .get(format!("http://127.0.0.1:{port}/readyz"))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.json().await.unwrap_or(Value::Null)))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_a_waits_for_its_database_and_then_becomes_ready() -> anyhow::Result<()> {
    let infra = infra()?;
    let name = format!("orders_late_{:08x}", fastrand::u32(..));
    let (server, _) = infra.database_url.rsplit_once('/').unwrap();
    let late_url = format!("{server}/{name}");
    let service = start_alone("service-a", &[("DATABASE_URL", late_url.as_str())]).await?;

    // Up and answering, but not ready: the database does not exist yet.
    let mut not_ready = None;
    for _ in 0..100 {
        if let Some(answer) = readyz(service.port).await {
            not_ready = Some(answer);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = not_ready.expect("service-a serves /readyz while its database is missing");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["postgres"].is_string(),
        "the failing check is named: {body}"
    );
    assert_ne!(body["checks"]["postgres"], "ok");

    // The database appears: service-a migrates and becomes ready without a restart.
    create_database(&infra.database_url, &name).await?;
    let mut last = None;
    for _ in 0..100 {
        last = readyz(service.port).await;
        if matches!(last, Some((200, _))) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        matches!(last, Some((200, _))),
        "never became ready: {last:?}"
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_b_without_a_broker_is_alive_but_not_ready() -> anyhow::Result<()> {
    // Nothing listens on port 9 of loopback: the broker is "down".
    let service = start_alone("service-b", &[("KAFKA_BROKERS", "127.0.0.1:9")]).await?;
    let mut answer = None;
    for _ in 0..100 {
        answer = readyz(service.port).await;
        if answer.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = answer.expect("service-b serves /readyz without a broker");
    assert_eq!(status, 503, "{body}");
    assert!(
        body["checks"]["kafka"].as_str().is_some_and(|s| s != "ok"),
        "{body}"
    );
    let alive = reqwest::Client::builder()
        .no_proxy()
        .build()?
        .get(format!("http://127.0.0.1:{}/healthz", service.port))
        .send()
        .await?;
    assert_eq!(alive.status(), 200);
    Ok(())
}

// The harness itself: a stack with a broken process fails at once, naming it.

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stack_with_a_process_that_cannot_start_fails_at_once_naming_it() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let error = match e2e::Stack::start(e2e::StackOptions {
        env: vec![("service-b", "KAFKA_PRODUCE_TIMEOUT_MS", "soon")],
        ..Default::default()
    })
    .await
    {
        Ok(_) => anyhow::bail!("a stack whose service-b cannot start was reported as started"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("service-b exited"), "{error}");
    // The log tail carries the cause, not a symptom far away.
    assert!(error.contains("KAFKA_PRODUCE_TIMEOUT_MS"), "{error}");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}: the harness waited instead of failing at once",
        started.elapsed()
    );
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_whose_port_is_taken_is_reported_with_the_cause() -> anyhow::Result<()> {
    let taken = std::net::TcpListener::bind("0.0.0.0:0")?;
    let port = taken.local_addr()?.port().to_string();
    let error = match start_alone("service-d", &[("PORT", port.as_str())]).await {
        Ok(_) => anyhow::bail!("service-d started on a port that is taken"),
        Err(error) => format!("{error:#}"),
    };
    assert!(error.contains("service-d exited"), "{error}");
    assert!(error.contains("Address already in use"), "{error}");
    Ok(())
}
