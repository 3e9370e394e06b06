//! Official status pages' incidents, once for both back ends, and the links from isdown's
//! incidents to the official incident that acknowledged them.
//!
//! Which official incident acknowledges which of ours is decided outside the store
//! (`corroborate::lead`); the store keeps what the pages said and the links it is given.

use super::{Arg, Backend, on, read_all, write};
use crate::store::{OfficialIncident, StoreError, StoredOfficialIncident, rows, scrub};
use crate::time::Millis;

const UPSERT_OFFICIAL: &str = "INSERT INTO official_incidents
     (provider, source_id, title, url, impact, started_at, acknowledged_at, resolved_at,
      first_seen_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
     ON CONFLICT (provider, source_id) DO UPDATE SET
         title = excluded.title, url = excluded.url, impact = excluded.impact,
         started_at = excluded.started_at, acknowledged_at = excluded.acknowledged_at,
         resolved_at = excluded.resolved_at";

/// An official incident counts from the earlier of its start and its posting (`CASE`: SQLite
/// spells that `MIN(a, b)`, PostgreSQL `LEAST(a, b)`).
const OFFICIAL_BETWEEN: &str = "SELECT id, provider, source_id, title, url, impact, started_at,
            acknowledged_at, resolved_at, first_seen_at
     FROM official_incidents
     WHERE CASE WHEN started_at < acknowledged_at THEN started_at ELSE acknowledged_at END <= $2
       AND (resolved_at IS NULL OR resolved_at >= $1)
     ORDER BY CASE WHEN started_at < acknowledged_at THEN started_at ELSE acknowledged_at END
              DESC, id DESC";

/// Only an incident without a link takes one, and only to an official incident that exists.
const LINK: &str = "UPDATE incidents SET official_id = $2
     WHERE id = $1 AND official_id IS NULL
       AND EXISTS (SELECT 1 FROM official_incidents WHERE id = $2)";

/// Gone once over (or, unresolved, posted) before the cutoff and no incident refers to it.
const DELETE_OLD: &str = "DELETE FROM official_incidents
     WHERE COALESCE(resolved_at, acknowledged_at) < $1
       AND id NOT IN (SELECT official_id FROM incidents WHERE official_id IS NOT NULL)";

/// An official incident not seen before is inserted (first seen at `seen_at`); a known one
/// (same provider and source id) takes the page's current title, link, impact and times, and
/// keeps its first sighting.
pub async fn upsert<B: Backend>(
    store: &B,
    provider: &str,
    incidents: &[OfficialIncident],
    seen_at: Millis,
) -> Result<(), StoreError> {
    if incidents.is_empty() {
        return Ok(());
    }
    let incidents = scrub::official(incidents);
    let mut tx = store.begin_write().await?;
    for o in &incidents {
        sqlx::query(UPSERT_OFFICIAL)
            .arg(provider)
            .arg(o.source_id.as_str())
            .arg(o.title.as_str())
            .arg(o.url.as_deref())
            .arg(o.impact.as_str())
            .arg(o.started_at)
            .arg(o.acknowledged_at)
            .arg(o.resolved_at)
            .arg(seen_at)
            .execute(on(&mut tx))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn between<B: Backend>(
    store: &B,
    from: Millis,
    to: Millis,
) -> Result<Vec<StoredOfficialIncident>, StoreError> {
    let between = sqlx::query(OFFICIAL_BETWEEN).arg(from).arg(to);
    read_all(store, between, rows::official).await
}

pub async fn link<B: Backend>(store: &B, links: &[(i64, i64)]) -> Result<(), StoreError> {
    if links.is_empty() {
        return Ok(());
    }
    let mut tx = store.begin_write().await?;
    for &(incident, official) in links {
        sqlx::query(LINK)
            .arg(incident)
            .arg(official)
            .execute(on(&mut tx))
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

pub async fn delete_old<B: Backend>(store: &B, cutoff: Millis) -> Result<u64, StoreError> {
    write(store, sqlx::query(DELETE_OLD).arg(cutoff)).await
}
