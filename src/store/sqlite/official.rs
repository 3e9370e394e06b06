//! Official status pages' incidents in SQLite, and the links from isdown's incidents to the
//! official incident that acknowledged them.
//!
//! Which official incident acknowledges which of ours is decided outside the store
//! (`corroborate::lead`); the store keeps what the pages said and the links it is given.

use super::{BEGIN_WRITE, SqliteStore};
use crate::store::{OfficialIncident, StoreError, StoredOfficialIncident, rows, scrub};
use crate::time::Millis;

const UPSERT_OFFICIAL: &str = "INSERT INTO official_incidents
     (provider, source_id, title, url, impact, started_at, acknowledged_at, resolved_at,
      first_seen_at)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
     ON CONFLICT (provider, source_id) DO UPDATE SET
         title = excluded.title, url = excluded.url, impact = excluded.impact,
         started_at = excluded.started_at, acknowledged_at = excluded.acknowledged_at,
         resolved_at = excluded.resolved_at";

/// An official incident counts from the earlier of its start and its posting.
const OFFICIAL_BETWEEN: &str = "SELECT id, provider, source_id, title, url, impact, started_at,
            acknowledged_at, resolved_at, first_seen_at
     FROM official_incidents
     WHERE MIN(started_at, acknowledged_at) <= ?2 AND (resolved_at IS NULL OR resolved_at >= ?1)
     ORDER BY MIN(started_at, acknowledged_at) DESC, id DESC";

/// Only an incident without a link takes one, and only to an official incident that exists.
const LINK: &str = "UPDATE incidents SET official_id = ?2
     WHERE id = ?1 AND official_id IS NULL
       AND EXISTS (SELECT 1 FROM official_incidents WHERE id = ?2)";

/// Gone once over (or, unresolved, posted) before the cutoff and no incident refers to it.
const DELETE_OLD: &str = "DELETE FROM official_incidents
     WHERE COALESCE(resolved_at, acknowledged_at) < ?1
       AND id NOT IN (SELECT official_id FROM incidents WHERE official_id IS NOT NULL)";

impl SqliteStore {
    pub(super) async fn upsert_official(
        &self,
        provider: &str,
        incidents: &[OfficialIncident],
        seen_at: Millis,
    ) -> Result<(), StoreError> {
        if incidents.is_empty() {
            return Ok(());
        }
        let incidents = scrub::official(incidents);
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        for o in &incidents {
            sqlx::query(UPSERT_OFFICIAL)
                .bind(provider)
                .bind(&o.source_id)
                .bind(&o.title)
                .bind(&o.url)
                .bind(&o.impact)
                .bind(o.started_at)
                .bind(o.acknowledged_at)
                .bind(o.resolved_at)
                .bind(seen_at)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn read_official_between(
        &self,
        from: Millis,
        to: Millis,
    ) -> Result<Vec<StoredOfficialIncident>, StoreError> {
        let rows = sqlx::query(OFFICIAL_BETWEEN)
            .bind(from)
            .bind(to)
            .fetch_all(&self.reader)
            .await?;
        rows.iter().map(rows::official).collect()
    }

    pub(super) async fn link_official(&self, links: &[(i64, i64)]) -> Result<(), StoreError> {
        if links.is_empty() {
            return Ok(());
        }
        let mut tx = self.writer.begin_with(BEGIN_WRITE).await?;
        for (incident, official) in links {
            sqlx::query(LINK)
                .bind(incident)
                .bind(official)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub(super) async fn delete_old_official(&self, cutoff: Millis) -> Result<u64, StoreError> {
        Ok(sqlx::query(DELETE_OLD)
            .bind(cutoff)
            .execute(&self.writer)
            .await?
            .rows_affected())
    }
}
