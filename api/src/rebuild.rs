//! `upzento projections status` and `upzento projections rebuild`.

use std::time::Duration;

use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use projections::runtime::{self, Projector};
use sqlx::PgPool;

/// Prints each projector's checkpoint and lag as a table.
pub async fn print_status(pool: &PgPool) -> anyhow::Result<()> {
    let names: Vec<&str> = projections::all().iter().map(|p| p.name()).collect();
    println!(
        "{:<16} {:>12} {:>14} {:>12} {:>12}",
        "projector", "position", "events", "lag events", "lag seconds"
    );
    for status in runtime::statuses(pool, &names).await? {
        println!(
            "{:<16} {:>12} {:>14} {:>12} {:>12.1}",
            status.name,
            status.position,
            status.events_applied,
            status.lag_events,
            status.lag_seconds
        );
    }
    Ok(())
}

/// Rebuilds the named projector, or all of them, from the first event.
pub async fn rebuild(pool: &PgPool, name: Option<&str>) -> anyhow::Result<()> {
    let chosen: Vec<_> = projections::all()
        .into_iter()
        .filter(|p| name.is_none_or(|n| n == p.name()))
        .collect();
    if chosen.is_empty() {
        bail!("there is no projector named {}", name.unwrap_or_default());
    }
    for projector in chosen {
        rebuild_one(pool, projector.as_ref()).await?;
    }
    Ok(())
}

/// Empties the projector's tables, then applies every event again: here, when no server
/// leads the projector (its secondary indexes built once at the end), or by watching the
/// leading server do it.
pub async fn rebuild_one(pool: &PgPool, projector: &dyn Projector) -> anyhow::Result<()> {
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(pool)
        .await?;
    let bar = ProgressBar::new(total.max(0) as u64).with_style(ProgressStyle::with_template(
        "{msg} [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta}",
    )?);
    bar.set_message(projector.name());
    let rebuilt =
        projections::rebuild::rebuild(pool, projector, |applied| bar.inc(applied as u64)).await?;
    if let Some(indexing) = rebuilt {
        bar.set_message(format!(
            "{} (indexes created in {indexing:.1?})",
            projector.name()
        ));
    } else {
        runtime::reset(pool, projector).await?;
        loop {
            let status = runtime::statuses(pool, &[projector.name()])
                .await?
                .remove(0);
            bar.set_position(status.events_applied.max(0) as u64);
            if status.lag_events == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    bar.finish();
    Ok(())
}
