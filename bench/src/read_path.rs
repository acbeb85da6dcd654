//! The read path on a large tenant: inbox list and search latency over HTTP, and how fast
//! the inbox projector builds its read models (catch-up and rebuild speed).

use std::time::Instant;

use anyhow::Context;
use serde_json::json;
use sqlx::{Executor, PgPool};

use crate::common::{database, summary, summary_header};

/// Writes the events of `conversations` conversations of `messages` messages each (incoming
/// and outgoing in turn, a third assigned to the admin) straight into the event store, in the
/// exact form the service stores them.
async fn seed(
    pool: &PgPool,
    tenant: &str,
    admin: &str,
    conversations: i64,
    messages: i64,
) -> anyhow::Result<i64> {
    let mut tx = pool.begin().await?;
    tx.execute(
        "create temporary table seed (n bigint primary key, id uuid not null) on commit drop",
    )
    .await?;
    sqlx::query("insert into seed select n, gen_random_uuid() from generate_series(1, $1) n")
        .bind(conversations)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, tenant_id, recorded_at)
         select 'Conversation', $1 || ':' || s.id, 1, 'ConversationStarted', '1',
                jsonb_build_object('ConversationStarted', jsonb_build_object(
                    'source', 'api', 'widget_id', null,
                    'contact', jsonb_build_object('name', 'Contact ' || s.n,
                                                  'email', 'contact' || s.n || '@example.com',
                                                  'phone', null))),
                '{}', $1::uuid, now() - interval '1 year' + s.n * interval '1 minute'
           from seed s order by s.n",
    )
    .bind(tenant)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, tenant_id, recorded_at)
         select 'Conversation', $1 || ':' || s.id, m + 1,
                case when m % 2 = 1 then 'MessageReceived' else 'MessagePosted' end, '1',
                case when m % 2 = 1 then jsonb_build_object('MessageReceived', jsonb_build_object(
                         'message_id', gen_random_uuid(),
                         'content', 'Hello, about my order ' || s.n || ' and parcel ' || (s.n * 7 + m) % 100003,
                         'sent_at', now() - interval '1 year' + s.n * interval '1 minute' + m * interval '1 second'))
                     else jsonb_build_object('MessagePosted', jsonb_build_object(
                         'message_id', gen_random_uuid(),
                         'content', 'Thanks, we are looking into it',
                         'author', 'agent:' || $2)) end,
                '{}', $1::uuid, now() - interval '1 year' + s.n * interval '1 minute' + m * interval '1 second'
           from seed s, generate_series(1, $3) m order by s.n, m",
    )
    .bind(tenant)
    .bind(admin)
    .bind(messages)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into events (aggregate_type, aggregate_id, sequence, event_type, event_version,
                             payload, metadata, tenant_id, recorded_at)
         select 'Conversation', $1 || ':' || s.id, $3 + 2, 'ConversationAssigned', '1',
                jsonb_build_object('ConversationAssigned', jsonb_build_object(
                    'agent_id', $2::uuid, 'team_id', null)),
                '{}', $1::uuid, now()
           from seed s where s.n % 3 = 0 order by s.n",
    )
    .bind(tenant)
    .bind(admin)
    .bind(messages)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(sqlx::query_scalar("select count(*) from events")
        .fetch_one(pool)
        .await?)
}

pub async fn run(conversations: i64, messages: i64, requests: usize) -> anyhow::Result<()> {
    let (pool, _) = database().await?;
    let admin = commands::tenancy::create_tenant(&pool, "Bench", "admin@example.com").await?;
    let tenant = admin.tenant_id.to_string();

    let started = Instant::now();
    let events = seed(
        &pool,
        &tenant,
        &admin.admin_id.to_string(),
        conversations,
        messages,
    )
    .await?;
    let seeded = started.elapsed();
    eprintln!("seeded {events} events in {seeded:.1?}");
    sqlx::query("analyze").execute(&pool).await?;

    let inbox = projections::inbox::Inbox;
    sqlx::query("insert into projector_checkpoints (name) values ('inbox') on conflict do nothing")
        .execute(&pool)
        .await?;
    let mut conn = pool.acquire().await?.detach();
    let started = Instant::now();
    loop {
        if projections::runtime::apply_batch(&mut conn, &inbox).await? == 0 {
            break;
        }
    }
    let projected = started.elapsed();
    let rate = events as f64 / projected.as_secs_f64();
    eprintln!("caught up on {events} events in {projected:.1?}: {rate:.0} events/s");
    drop(conn);

    // What `upzento projections rebuild inbox` does, indexes created again included.
    let started = Instant::now();
    let indexing = projections::rebuild::rebuild(&pool, &inbox, |_| {})
        .await?
        .context("another process leads the inbox projector")?;
    let rebuilt = started.elapsed();
    let rebuild_rate = events as f64 / rebuilt.as_secs_f64();
    eprintln!(
        "rebuilt from {events} events in {rebuilt:.1?}, creating the indexes {indexing:.1?} of it: {rebuild_rate:.0} events/s"
    );
    sqlx::query("analyze").execute(&pool).await?;

    let args = api::config::ServeArgs {
        listen: "127.0.0.1:0".parse()?,
        ..Default::default()
    };
    let app = api::startup::Application::build(pool.clone(), &args).await?;
    let base = format!("http://{}/api/v1", app.address());
    tokio::spawn(app.run_until(std::future::pending()));
    let client = reqwest::Client::new();

    let kinds = [
        ("list open, newest 25", "/conversations".to_owned()),
        ("list mine", "/conversations?assignee=me".to_owned()),
        (
            "list waiting longest",
            "/conversations?sort=waiting_since".to_owned(),
        ),
        (
            "search common word",
            "/conversations?status=all&q=order".to_owned(),
        ),
        (
            "search rare word",
            format!("/conversations?status=all&q=parcel%20{}", 4242),
        ),
        (
            "search contact email",
            "/conversations?status=all&q=contact777@example.com".to_owned(),
        ),
        ("unread totals", "/unread".to_owned()),
    ];
    let mut results = Vec::new();
    println!("{}", summary_header());
    for (name, path) in kinds {
        let mut times = Vec::with_capacity(requests);
        for _ in 0..requests {
            let started = Instant::now();
            let response = client
                .get(format!("{base}{path}"))
                .bearer_auth(&admin.admin_token)
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "{path}: {}",
                response.status()
            );
            response.bytes().await.context("reads the answer")?;
            times.push(started.elapsed());
        }
        let (row, figures) = summary(name, &mut times);
        println!("{row}");
        results.push(figures);
    }
    println!(
        "{}",
        json!({
            "conversations": conversations,
            "messages": conversations * messages,
            "events": events,
            "seed_seconds": seeded.as_secs_f64(),
            "catch_up_events_per_second": rate,
            "rebuild_events_per_second": rebuild_rate,
            "rebuild_index_seconds": indexing.as_secs_f64(),
            "queries": results,
        })
    );
    Ok(())
}
