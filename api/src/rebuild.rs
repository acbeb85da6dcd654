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

/// Rebuilds the named read model (a projector, or the family of partitions that share a
/// name), or all of them, from the first event.
pub async fn rebuild(pool: &PgPool, name: Option<&str>) -> anyhow::Result<()> {
    let all = projections::all();
    let mut families: Vec<&str> = all.iter().map(|p| p.family()).collect();
    families.dedup();
    let chosen: Vec<&str> = families
        .into_iter()
        .filter(|family| name.is_none_or(|n| n == *family))
        .collect();
    if chosen.is_empty() {
        bail!("there is no projector named {}", name.unwrap_or_default());
    }
    for family in chosen {
        let members: Vec<&dyn Projector> = all
            .iter()
            .filter(|p| p.family() == family)
            .map(|p| p.as_ref())
            .collect();
        rebuild_family(pool, family, &members).await?;
    }
    Ok(())
}

/// Empties a read model's tables, then applies every event again, each partition on a
/// connection of its own: here, when no server leads them, or by watching the leading
/// server do it.
pub async fn rebuild_family(
    pool: &PgPool,
    family: &str,
    members: &[&dyn Projector],
) -> anyhow::Result<()> {
    let total: i64 = sqlx::query_scalar("select count(*) from events")
        .fetch_one(pool)
        .await?;
    // Every partition reads every event (and keeps its own).
    let bar = ProgressBar::new((total.max(0) as u64) * members.len() as u64).with_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} events, {per_sec}, ETA {eta}")?,
    );
    bar.set_message(family.to_owned());
    runtime::reset(pool, members).await?;
    let names: Vec<&str> = members.iter().map(|p| p.name()).collect();
    let mut leads = Vec::new();
    for projector in members {
        let mut conn = pool.acquire().await?.detach();
        if runtime::try_lead(&mut conn, *projector).await? {
            leads.push((conn, *projector));
        }
    }
    if leads.len() == members.len() {
        let runs = leads.into_iter().map(|(mut conn, projector)| {
            let bar = bar.clone();
            async move {
                loop {
                    let applied = runtime::apply_batch(&mut conn, projector).await?;
                    if applied == 0 {
                        return anyhow::Ok(());
                    }
                    bar.inc(applied as u64);
                }
            }
        });
        futures::future::try_join_all(runs).await?;
    } else {
        // A running server leads (some of) them: it rebuilds; watch it.
        drop(leads);
        loop {
            let statuses = runtime::statuses(pool, &names).await?;
            let applied: i64 = statuses.iter().map(|s| s.events_applied.max(0)).sum();
            bar.set_position(applied as u64);
            if statuses.iter().all(|s| s.lag_events == 0) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    bar.finish();
    Ok(())
}
