//! The durable queue part of the store suite: files, batches and the life of a request line.

use super::T0;
use crate::store::Store;
use crate::store::queue::{
    BatchEnd, BatchRecord, BatchStatus, ClaimedLine, FileDeletion, FileLine, FilePurpose,
    LineError, LineOutcome, LineResponse, LineResult, ListPage, NewBatch, NewFile, NewLine,
    PendingLines, QueueStore, ResultFile, ResultKind,
};
use crate::time::{DAY_MS, SECOND_MS};

const OWNER: &str = "owner-a";
const OTHER: &str = "owner-b";

fn new_file(id: &str, owner: &str, at: i64) -> NewFile {
    NewFile {
        id: id.to_owned(),
        owner: owner.to_owned(),
        filename: format!("{id}.jsonl"),
        purpose: FilePurpose::Batch,
        created_at: at,
    }
}

fn line(n: u32) -> FileLine {
    FileLine {
        line: n,
        content: format!(r#"{{"custom_id":"c{n}"}}"#).into_bytes(),
    }
}

/// A complete upload of `lines` lines (numbered 1..=lines) for `owner`; returns its key.
async fn upload(q: &dyn QueueStore, id: &str, owner: &str, lines: u32) -> i64 {
    let key = q.queue_file_begin(&new_file(id, owner, T0)).await.unwrap();
    let all: Vec<FileLine> = (1..=lines).map(line).collect();
    q.queue_file_append(key, &all).await.unwrap();
    q.queue_file_complete(key, u64::from(lines) * 20, u64::from(lines))
        .await
        .unwrap();
    key
}

/// A batch over `file` with one line per file line, all for `model`, started (in progress).
async fn running_batch(
    q: &dyn QueueStore,
    id: &str,
    file: (i64, &str),
    lines: u32,
    model: &str,
) -> i64 {
    let key = q
        .queue_batch_create(&NewBatch {
            id: id.to_owned(),
            owner: OWNER.to_owned(),
            input_file_key: file.0,
            input_file_id: file.1.to_owned(),
            endpoint: "/v1/chat/completions".to_owned(),
            completion_window: "24h".to_owned(),
            metadata: Some(r#"{"job":"nightly"}"#.to_owned()),
            created_at: T0,
            expires_at: T0 + DAY_MS,
        })
        .await
        .unwrap();
    let new: Vec<NewLine> = (1..=lines)
        .map(|n| NewLine {
            line: n,
            custom_id: format!("c{n}"),
            model: model.to_owned(),
        })
        .collect();
    q.queue_lines_add(key, &new).await.unwrap();
    assert!(q.queue_batch_start(key, T0 + SECOND_MS).await.unwrap());
    key
}

/// The owner's batch `id`, which the test has created.
async fn batch_of(q: &dyn QueueStore, id: &str) -> BatchRecord {
    q.queue_batch(Some(OWNER), id).await.unwrap().unwrap()
}

/// Each claimed line with how many times it has been dispatched.
fn dispatches(claimed: &[ClaimedLine]) -> Vec<(u32, u32)> {
    claimed.iter().map(|c| (c.line, c.dispatches)).collect()
}

fn answered(batch_key: i64, line: u32, outcome: LineOutcome, body: &str) -> LineResult {
    LineResult {
        batch_key,
        line,
        outcome,
        finished_at: T0 + 2 * SECOND_MS,
        response: Some(LineResponse {
            status_code: if outcome == LineOutcome::Done {
                200
            } else {
                400
            },
            request_id: format!("req_{line}"),
            provider: Some("deepseek".into()),
            model: Some("deepseek-v4-flash".into()),
            attempts: Some(1),
            body: body.as_bytes().to_vec(),
        }),
        error: None,
    }
}

pub async fn queue_secret_is_created_once(store: &dyn Store) {
    let q = store.queue();
    let first = q.queue_secret(b"first-secret-bytes").await.unwrap();
    let second = q.queue_secret(b"another-secret").await.unwrap();
    assert_eq!(first, b"first-secret-bytes");
    assert_eq!(second, first, "the first secret stays");
}

pub async fn queue_uploads_are_invisible_until_complete_and_owned(store: &dyn Store) {
    let q = store.queue();
    let key = q
        .queue_file_begin(&new_file("file-a", OWNER, T0))
        .await
        .unwrap();
    q.queue_file_append(key, &[line(1), line(3)]).await.unwrap();
    assert_eq!(q.queue_file(OWNER, "file-a").await.unwrap(), None);
    q.queue_file_complete(key, 40, 2).await.unwrap();
    let file = q.queue_file(OWNER, "file-a").await.unwrap().unwrap();
    assert_eq!(
        (file.bytes, file.lines, file.purpose),
        (40, 2, FilePurpose::Batch)
    );
    assert_eq!(file.result_of, None);
    assert_eq!(
        q.queue_file(OTHER, "file-a").await.unwrap(),
        None,
        "another owner's"
    );
    let lines = q.queue_file_lines(key, 0, 10).await.unwrap();
    assert_eq!(lines, vec![line(1), line(3)]);
    assert_eq!(q.queue_file_lines(key, 1, 10).await.unwrap(), vec![line(3)]);

    // An upload that never completes goes when the queue next opens, lines and all.
    let broken = q
        .queue_file_begin(&new_file("file-b", OWNER, T0))
        .await
        .unwrap();
    q.queue_file_append(broken, &[line(1)]).await.unwrap();
    // Not when it began after the cut (another instance may still be receiving it).
    assert_eq!(q.queue_drop_unfinished_uploads(T0).await.unwrap(), 0);
    assert_eq!(
        q.queue_file_lines(broken, 0, 10).await.unwrap(),
        vec![line(1)]
    );
    assert_eq!(q.queue_drop_unfinished_uploads(T0 + 1).await.unwrap(), 1);
    assert!(q.queue_file_lines(broken, 0, 10).await.unwrap().is_empty());
    // One discarded on purpose goes at once.
    let dropped = q
        .queue_file_begin(&new_file("file-c", OWNER, T0))
        .await
        .unwrap();
    q.queue_file_append(dropped, &[line(1)]).await.unwrap();
    q.queue_file_discard(dropped).await.unwrap();
    assert!(q.queue_file_lines(dropped, 0, 10).await.unwrap().is_empty());
    let listed = q
        .queue_files(
            OWNER,
            &ListPage {
                after: None,
                limit: 10,
                newest_first: true,
                purpose: None,
            },
        )
        .await
        .unwrap();
    assert_eq!(listed.len(), 1);
}

pub async fn queue_listings_page_newest_first_after_a_cursor(store: &dyn Store) {
    let q = store.queue();
    for n in 1..=5 {
        upload(q, &format!("file-{n}"), OWNER, 1).await;
    }
    upload(q, "file-x", OTHER, 1).await;
    let page = |after: Option<&str>, newest_first| ListPage {
        after: after.map(str::to_owned),
        limit: 2,
        newest_first,
        purpose: Some(FilePurpose::Batch),
    };
    let ids = |files: Vec<crate::store::queue::FileRecord>| -> Vec<String> {
        files.into_iter().map(|f| f.id).collect()
    };
    assert_eq!(
        ids(q.queue_files(OWNER, &page(None, true)).await.unwrap()),
        ["file-5", "file-4"]
    );
    assert_eq!(
        ids(q
            .queue_files(OWNER, &page(Some("file-4"), true))
            .await
            .unwrap()),
        ["file-3", "file-2"]
    );
    assert_eq!(
        ids(q
            .queue_files(OWNER, &page(Some("file-2"), false))
            .await
            .unwrap()),
        ["file-3", "file-4"]
    );
    assert!(
        q.queue_files(OWNER, &page(Some("file-x"), true))
            .await
            .unwrap()
            .is_empty()
    );

    let file = upload(q, "file-in", OWNER, 3).await;
    for n in 1..=3 {
        running_batch(q, &format!("batch_{n}"), (file, "file-in"), 1, "m").await;
    }
    let batch_ids =
        |batches: Vec<BatchRecord>| -> Vec<String> { batches.into_iter().map(|b| b.id).collect() };
    assert_eq!(
        batch_ids(q.queue_batches(OWNER, None, 2).await.unwrap()),
        ["batch_3", "batch_2"]
    );
    assert_eq!(
        batch_ids(q.queue_batches(OWNER, Some("batch_2"), 2).await.unwrap()),
        ["batch_1"]
    );
    assert!(q.queue_batches(OTHER, None, 10).await.unwrap().is_empty());
}

pub async fn queue_a_line_ends_once_whatever_is_replayed(store: &dyn Store) {
    let q = store.queue();
    let file = upload(q, "file-in", OWNER, 3).await;
    let batch = running_batch(q, "batch_a", (file, "file-in"), 3, "kimi-k2").await;
    let record = batch_of(q, "batch_a").await;
    assert_eq!(record.status, BatchStatus::InProgress);
    assert_eq!(record.counts.total, 3);
    assert_eq!(record.times.in_progress_at, Some(T0 + SECOND_MS));

    let claimed = q.queue_claim("kimi-k2", 2).await.unwrap();
    assert_eq!(dispatches(&claimed), [(1, 1), (2, 1)]);
    assert_eq!(
        claimed[0].request,
        line(1).content,
        "the request line as uploaded"
    );
    assert_eq!(claimed[0].custom_id, "c1");
    // Claimed lines are no longer pending.
    assert_eq!(
        q.queue_pending().await.unwrap(),
        vec![PendingLines {
            model: "kimi-k2".into(),
            pending: 1
        }]
    );
    assert!(q.queue_claim("other-model", 5).await.unwrap().is_empty());

    let done = answered(batch, 1, LineOutcome::Done, r#"{"ok":1}"#);
    let failed = answered(batch, 2, LineOutcome::Failed, r#"{"error":{}}"#);
    assert_eq!(
        q.queue_record(&[done.clone(), failed.clone()])
            .await
            .unwrap(),
        2
    );
    // A replay (a result delivered twice) writes nothing and counts nothing.
    assert_eq!(q.queue_record(&[done.clone(), failed]).await.unwrap(), 0);
    // A result for a line that is pending (never claimed) is not written either.
    let early = answered(batch, 3, LineOutcome::Done, r#"{"ok":3}"#);
    assert_eq!(q.queue_record(&[early]).await.unwrap(), 0);

    let record = q.queue_batch(None, "batch_a").await.unwrap().unwrap();
    assert_eq!((record.counts.completed, record.counts.failed), (1, 1));
    let output = q
        .queue_results(batch, ResultKind::Output, 0, 10)
        .await
        .unwrap();
    assert_eq!(output.len(), 1);
    assert_eq!(output[0].custom_id, "c1");
    assert_eq!(output[0].response, done.response);
    let errors = q
        .queue_results(batch, ResultKind::Error, 0, 10)
        .await
        .unwrap();
    assert_eq!(errors.iter().map(|r| r.line).collect::<Vec<_>>(), [2]);
}

/// Groups larger than one statement holds, groups that are not a power of two, and a line named
/// twice in one group: every line still moves once, and counts follow what was written.
pub async fn queue_groups_of_any_size_move_each_line_once(store: &dyn Store) {
    let q = store.queue();
    let file = upload(q, "file-in", OWNER, 150).await;
    let batch = running_batch(q, "batch_a", (file, "file-in"), 150, "m").await;
    let mut claimed = Vec::new();
    for want in [64, 64, 64] {
        claimed.extend(q.queue_claim("m", want).await.unwrap());
    }
    let mut lines: Vec<u32> = claimed.iter().map(|c| c.line).collect();
    assert_eq!(
        lines,
        (1..=150).collect::<Vec<_>>(),
        "each line claimed once"
    );
    assert_eq!(claimed[149].request, line(150).content);
    assert!(q.queue_claim("m", 64).await.unwrap().is_empty());

    // 37 lines back to pending, line 5 named twice.
    let mut back: Vec<(i64, u32)> = (1..=37).map(|n| (batch, n)).collect();
    back.push((batch, 5));
    q.queue_release(&back).await.unwrap();
    let again = q.queue_claim("m", 64).await.unwrap();
    lines = again.iter().map(|c| c.line).collect();
    assert_eq!(lines, (1..=37).collect::<Vec<_>>());
    assert!(again.iter().all(|c| c.dispatches == 2));

    // 100 results in one call, line 7 twice: 100 lines written, each counted once.
    let mut results: Vec<LineResult> = (1..=100)
        .map(|n| {
            let outcome = if n % 10 == 0 {
                LineOutcome::Failed
            } else {
                LineOutcome::Done
            };
            answered(batch, n, outcome, &format!(r#"{{"n":{n}}}"#))
        })
        .collect();
    results.push(answered(batch, 7, LineOutcome::Done, r#"{"n":7}"#));
    assert_eq!(q.queue_record(&results).await.unwrap(), 100);
    let record = q.queue_batch(None, "batch_a").await.unwrap().unwrap();
    assert_eq!((record.counts.completed, record.counts.failed), (90, 10));
    let output = q
        .queue_results(batch, ResultKind::Output, 0, 200)
        .await
        .unwrap();
    assert_eq!(output.len(), 90);
    assert_eq!(output[6].response.as_ref().unwrap().body, br#"{"n":7}"#);
}

pub async fn queue_released_and_recovered_lines_are_claimed_again(store: &dyn Store) {
    let q = store.queue();
    let file = upload(q, "file-in", OWNER, 3).await;
    let batch = running_batch(q, "batch_a", (file, "file-in"), 3, "m").await;
    let first = q.queue_claim("m", 3).await.unwrap();
    assert_eq!(first.len(), 3);
    // A wait sends line 1 back; a crash leaves 2 and 3 in flight until the next start.
    q.queue_release(&[(batch, 1)]).await.unwrap();
    let again = q.queue_claim("m", 3).await.unwrap();
    assert_eq!(dispatches(&again), [(1, 2)]);
    assert_eq!(q.queue_recover_lines().await.unwrap(), 3);
    let after_restart = q.queue_claim("m", 3).await.unwrap();
    assert_eq!(dispatches(&after_restart), [(1, 3), (2, 2), (3, 2)]);
    // A released line that had already ended stays ended.
    q.queue_record(&[answered(batch, 1, LineOutcome::Done, "{}")])
        .await
        .unwrap();
    q.queue_release(&[(batch, 1)]).await.unwrap();
    assert_eq!(
        q.queue_claim("m", 3).await.unwrap().len(),
        0,
        "2 and 3 are in flight, 1 is done"
    );
}

pub async fn queue_claims_take_the_oldest_batch_first_and_only_running_ones(store: &dyn Store) {
    let q = store.queue();
    let file = upload(q, "file-in", OWNER, 2).await;
    let old = running_batch(q, "batch_old", (file, "file-in"), 2, "m").await;
    let new = running_batch(q, "batch_new", (file, "file-in"), 2, "m").await;
    let claimed = q.queue_claim("m", 3).await.unwrap();
    assert_eq!(
        claimed
            .iter()
            .map(|c| (c.batch_key, c.line))
            .collect::<Vec<_>>(),
        [(old, 1), (old, 2), (new, 1)]
    );
    // A batch being cancelled gives no more lines.
    let cancelling = q
        .queue_batch_cancel(OWNER, "batch_new", T0 + 5)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(cancelling.status, BatchStatus::Cancelling);
    assert_eq!(cancelling.times.cancelling_at, Some(T0 + 5));
    assert!(q.queue_claim("m", 3).await.unwrap().is_empty());
    // Another owner cannot cancel it; a second cancel changes nothing.
    assert_eq!(
        q.queue_batch_cancel(OTHER, "batch_new", T0).await.unwrap(),
        None
    );
    let again = q
        .queue_batch_cancel(OWNER, "batch_new", T0 + 9)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.times.cancelling_at, Some(T0 + 5));
}

pub async fn queue_a_rejected_batch_keeps_its_errors_and_no_lines(store: &dyn Store) {
    let q = store.queue();
    let file = upload(q, "file-in", OWNER, 2).await;
    let key = q
        .queue_batch_create(&NewBatch {
            id: "batch_bad".into(),
            owner: OWNER.into(),
            input_file_key: file,
            input_file_id: "file-in".into(),
            endpoint: "/v1/chat/completions".into(),
            completion_window: "24h".into(),
            metadata: None,
            created_at: T0,
            expires_at: T0 + DAY_MS,
        })
        .await
        .unwrap();
    let validating = batch_of(q, "batch_bad").await;
    assert_eq!(validating.status, BatchStatus::Validating);
    q.queue_lines_add(
        key,
        &[NewLine {
            line: 1,
            custom_id: "c1".into(),
            model: "m".into(),
        }],
    )
    .await
    .unwrap();
    let errors = r#"[{"code":"invalid_json_line","message":"bad","param":null,"line":2}]"#;
    q.queue_batch_reject(key, errors, T0 + 7).await.unwrap();
    let failed = batch_of(q, "batch_bad").await;
    assert_eq!(failed.status, BatchStatus::Failed);
    assert_eq!(failed.times.failed_at, Some(T0 + 7));
    let stored: serde_json::Value =
        serde_json::from_str(failed.errors.as_deref().unwrap()).unwrap();
    assert_eq!(stored[0]["line"], 2);
    assert_eq!(failed.counts.total, 0);
    assert!(
        q.queue_pending().await.unwrap().is_empty(),
        "its lines are gone"
    );
    assert!(
        !q.queue_batch_start(key, T0 + 8).await.unwrap(),
        "a failed batch never starts"
    );
    assert!(q.queue_open_batches().await.unwrap().is_empty());
}

pub async fn queue_an_ended_batch_has_its_result_files_and_frees_its_input(store: &dyn Store) {
    let q = store.queue();
    let file = upload(q, "file-in", OWNER, 4).await;
    let batch = running_batch(q, "batch_a", (file, "file-in"), 4, "m").await;
    assert_eq!(
        q.queue_file_delete(OWNER, "file-in").await.unwrap(),
        FileDeletion::InUse {
            batch: "batch_a".into()
        }
    );
    let claimed = q.queue_claim("m", 1).await.unwrap();
    q.queue_record(&[answered(batch, claimed[0].line, LineOutcome::Done, "{}")])
        .await
        .unwrap();
    q.queue_batch_cancel(OWNER, "batch_a", T0 + 10)
        .await
        .unwrap();
    let cancelled = LineError {
        code: "batch_cancelled".into(),
        message: "cancelled before it was sent".into(),
    };
    assert_eq!(
        q.queue_lines_close(batch, &cancelled, T0 + 11)
            .await
            .unwrap(),
        3
    );
    let files = [
        ResultFile {
            id: "file-out".into(),
            kind: ResultKind::Output,
            bytes: 100,
            lines: 1,
        },
        ResultFile {
            id: "file-err".into(),
            kind: ResultKind::Error,
            bytes: 300,
            lines: 3,
        },
    ];
    assert!(
        q.queue_batch_finish(batch, BatchEnd::Cancelled, T0 + 12, &files)
            .await
            .unwrap()
    );
    assert!(
        !q.queue_batch_finish(batch, BatchEnd::Completed, T0 + 13, &[])
            .await
            .unwrap(),
        "an ended batch stays as it ended"
    );
    let ended = batch_of(q, "batch_a").await;
    assert_eq!(ended.status, BatchStatus::Cancelled);
    assert_eq!(
        (ended.times.finalizing_at, ended.times.cancelled_at),
        (Some(T0 + 12), Some(T0 + 12))
    );
    assert_eq!((ended.counts.completed, ended.counts.failed), (1, 3));
    assert_eq!(ended.output_file_id.as_deref(), Some("file-out"));
    assert_eq!(ended.error_file_id.as_deref(), Some("file-err"));
    let out = q.queue_file(OWNER, "file-err").await.unwrap().unwrap();
    assert_eq!(out.purpose, FilePurpose::BatchOutput);
    assert_eq!(
        out.result_of,
        Some(crate::store::queue::ResultOf {
            batch_key: batch,
            batch_id: "batch_a".into(),
            kind: ResultKind::Error
        })
    );
    assert_eq!((out.bytes, out.lines), (300, 3));
    let closed = q
        .queue_results(batch, ResultKind::Error, 0, 10)
        .await
        .unwrap();
    assert_eq!(closed.len(), 3);
    assert_eq!(closed[0].error, Some(cancelled));
    assert_eq!(closed[0].response, None);

    assert_eq!(
        q.queue_file_delete(OWNER, "file-in").await.unwrap(),
        FileDeletion::Deleted
    );
    assert_eq!(
        q.queue_file_delete(OWNER, "file-in").await.unwrap(),
        FileDeletion::NotFound
    );
    assert_eq!(
        q.queue_file_delete(OTHER, "file-out").await.unwrap(),
        FileDeletion::NotFound
    );
}

pub async fn queue_prune_removes_ended_batches_and_unread_uploads(store: &dyn Store) {
    let q = store.queue();
    let file = upload(q, "file-in", OWNER, 1).await;
    let ended = running_batch(q, "batch_ended", (file, "file-in"), 1, "m").await;
    q.queue_claim("m", 1).await.unwrap();
    q.queue_record(&[answered(ended, 1, LineOutcome::Done, "{}")])
        .await
        .unwrap();
    let out = ResultFile {
        id: "file-out".into(),
        kind: ResultKind::Output,
        bytes: 10,
        lines: 1,
    };
    q.queue_batch_finish(ended, BatchEnd::Completed, T0 + 5, &[out])
        .await
        .unwrap();
    let busy = upload(q, "file-busy", OWNER, 1).await;
    running_batch(q, "batch_open", (busy, "file-busy"), 1, "m").await;

    let pruned = q.queue_prune(T0 + DAY_MS).await.unwrap();
    assert_eq!(
        (pruned.batches, pruned.files),
        (1, 2),
        "batch, its output, its input"
    );
    assert_eq!(q.queue_batch(None, "batch_ended").await.unwrap(), None);
    assert!(
        q.queue_file(OWNER, "file-busy").await.unwrap().is_some(),
        "read by an open batch"
    );
    assert!(q.queue_batch(None, "batch_open").await.unwrap().is_some());
}
