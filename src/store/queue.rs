//! What the store keeps for the durable queue (`crate::queue`): uploaded files and their lines,
//! batches, and the state and result of every request line of a batch.
//!
//! Plain records in the queue's language, no SQL and no HTTP: the OpenAI objects are built from
//! them by `queue::object`, the result files' lines by `queue::results`. A line moves pending →
//! in flight → done or failed; its result is written by the one update that ends its flight, so
//! each line has at most one result whatever happens to the process.

use async_trait::async_trait;

use super::StoreError;
use crate::time::Millis;

/// What a file is for. Uploads take `batch` only (isdown stores files for the Batch API); result
/// files are `batch_output`, as OpenAI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FilePurpose {
    Batch,
    BatchOutput,
}

impl FilePurpose {
    pub fn as_str(self) -> &'static str {
        match self {
            FilePurpose::Batch => "batch",
            FilePurpose::BatchOutput => "batch_output",
        }
    }

    pub fn parse(text: &str) -> Option<FilePurpose> {
        [FilePurpose::Batch, FilePurpose::BatchOutput]
            .into_iter()
            .find(|p| p.as_str() == text)
    }
}

/// Which of a batch's two result files: the answers (output) or the failures (error).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResultKind {
    Output,
    Error,
}

impl ResultKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ResultKind::Output => "output",
            ResultKind::Error => "error",
        }
    }

    pub fn parse(text: &str) -> Option<ResultKind> {
        [ResultKind::Output, ResultKind::Error]
            .into_iter()
            .find(|k| k.as_str() == text)
    }
}

/// A file about to be uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFile {
    pub id: String,
    /// Keyed hash of the client key (`queue::owner`), never the key.
    pub owner: String,
    pub filename: String,
    pub purpose: FilePurpose,
    pub created_at: Millis,
}

/// A file as stored (only complete uploads and result files are ever returned).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    pub key: i64,
    pub id: String,
    pub owner: String,
    pub filename: String,
    pub purpose: FilePurpose,
    pub bytes: u64,
    /// Lines stored (uploads: non-blank lines; result files: result lines).
    pub lines: u64,
    pub created_at: Millis,
    /// For a result file: its batch and which of the two files it is.
    pub result_of: Option<ResultOf>,
}

/// The batch a result file belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultOf {
    pub batch_key: i64,
    pub batch_id: String,
    pub kind: ResultKind,
}

/// One non-blank line of an uploaded file, with its 1-based line number in the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileLine {
    pub line: u32,
    pub content: Vec<u8>,
}

/// A page of a listing: objects after the one with id `after` (in listing order), at most
/// `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListPage {
    pub after: Option<String>,
    pub limit: u32,
    /// Newest first (the default of both listings) or oldest first.
    pub newest_first: bool,
    pub purpose: Option<FilePurpose>,
}

/// What deleting a file did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileDeletion {
    Deleted,
    NotFound,
    /// The input file of a batch that has not ended: deleting it would lose the batch's work.
    InUse {
        batch: String,
    },
}

/// A batch's status, as OpenAI names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchStatus {
    Validating,
    Failed,
    InProgress,
    Finalizing,
    Completed,
    Expired,
    Cancelling,
    Cancelled,
}

impl BatchStatus {
    pub const ALL: [BatchStatus; 8] = [
        BatchStatus::Validating,
        BatchStatus::Failed,
        BatchStatus::InProgress,
        BatchStatus::Finalizing,
        BatchStatus::Completed,
        BatchStatus::Expired,
        BatchStatus::Cancelling,
        BatchStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BatchStatus::Validating => "validating",
            BatchStatus::Failed => "failed",
            BatchStatus::InProgress => "in_progress",
            BatchStatus::Finalizing => "finalizing",
            BatchStatus::Completed => "completed",
            BatchStatus::Expired => "expired",
            BatchStatus::Cancelling => "cancelling",
            BatchStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(text: &str) -> Option<BatchStatus> {
        BatchStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// Nothing more will happen to the batch.
    pub fn is_final(self) -> bool {
        matches!(
            self,
            BatchStatus::Failed
                | BatchStatus::Completed
                | BatchStatus::Expired
                | BatchStatus::Cancelled
        )
    }
}

/// How a batch that ran ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchEnd {
    Completed,
    Expired,
    Cancelled,
}

impl BatchEnd {
    pub fn status(self) -> BatchStatus {
        match self {
            BatchEnd::Completed => BatchStatus::Completed,
            BatchEnd::Expired => BatchStatus::Expired,
            BatchEnd::Cancelled => BatchStatus::Cancelled,
        }
    }
}

/// A batch as created (status `validating`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewBatch {
    pub id: String,
    pub owner: String,
    pub input_file_key: i64,
    pub input_file_id: String,
    pub endpoint: String,
    pub completion_window: String,
    /// A JSON object, as the client sent it.
    pub metadata: Option<String>,
    pub created_at: Millis,
    pub expires_at: Millis,
}

/// When a batch reached each status (`None`: not yet, or never).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchTimes {
    pub created_at: Millis,
    pub in_progress_at: Option<Millis>,
    pub expires_at: Millis,
    pub finalizing_at: Option<Millis>,
    pub completed_at: Option<Millis>,
    pub failed_at: Option<Millis>,
    pub expired_at: Option<Millis>,
    pub cancelling_at: Option<Millis>,
    pub cancelled_at: Option<Millis>,
}

/// A batch's request counts: `completed + failed` reaches `total` when every line has ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    pub total: u64,
    pub completed: u64,
    pub failed: u64,
}

/// A batch as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub key: i64,
    pub id: String,
    pub owner: String,
    pub input_file_key: i64,
    pub input_file_id: String,
    pub endpoint: String,
    pub completion_window: String,
    pub metadata: Option<String>,
    pub status: BatchStatus,
    /// A JSON array of `{code, message, param, line}`, once validation failed.
    pub errors: Option<String>,
    pub times: BatchTimes,
    pub counts: RequestCounts,
    pub output_file_id: Option<String>,
    pub error_file_id: Option<String>,
}

/// A request line found valid, added while its batch is validating.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewLine {
    pub line: u32,
    pub custom_id: String,
    /// `body.model`: the route it waits for.
    pub model: String,
}

/// A line claimed for dispatch (now in flight), with its request line as uploaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedLine {
    pub batch_key: i64,
    pub line: u32,
    pub custom_id: String,
    pub request: Vec<u8>,
    /// Times it was claimed, this one included (more than 1 after a restart or a wait).
    pub dispatches: u32,
}

/// How a line ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineOutcome {
    /// An answer: the output file.
    Done,
    /// An error answer or no answer: the error file.
    Failed,
}

impl LineOutcome {
    pub fn file(self) -> ResultKind {
        match self {
            LineOutcome::Done => ResultKind::Output,
            LineOutcome::Failed => ResultKind::Error,
        }
    }
}

/// The HTTP answer a line got (OpenAI's `response` object), and who served it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineResponse {
    pub status_code: u16,
    pub request_id: String,
    /// The provider and model that answered (the gateway's `x-isdown-*` headers), when one did.
    pub provider: Option<String>,
    pub model: Option<String>,
    pub attempts: Option<u32>,
    /// The JSON body, as answered.
    pub body: Vec<u8>,
}

/// A failure without an HTTP answer (OpenAI's `error` object): expired, cancelled.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub code: String,
    pub message: String,
}

/// The end of one line's flight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineResult {
    pub batch_key: i64,
    pub line: u32,
    pub outcome: LineOutcome,
    pub finished_at: Millis,
    pub response: Option<LineResponse>,
    pub error: Option<LineError>,
}

/// A line's stored result, for the result files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredResult {
    pub line: u32,
    pub custom_id: String,
    pub response: Option<LineResponse>,
    pub error: Option<LineError>,
}

/// A result file to create when a batch ends.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResultFile {
    pub id: String,
    pub kind: ResultKind,
    pub bytes: u64,
    pub lines: u64,
}

/// Pending lines of one route (the `model` their requests name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingLines {
    pub model: String,
    pub pending: u64,
}

/// What one prune of the queue removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueuePruned {
    pub batches: u64,
    pub files: u64,
}

/// What the durable queue keeps, behind the [`super::Store`]'s `queue()`: a back end implements
/// it beside `Store` and passes the same suite (`store::tests::suite::queue`).
#[async_trait]
pub trait QueueStore: Send + Sync {
    // === files ===

    /// The secret that keys owner hashes: the stored one, or `fresh` stored now when there is
    /// none yet (so every caller gets the same secret, first writer wins).
    async fn queue_secret(&self, fresh: &[u8]) -> Result<Vec<u8>, StoreError>;

    /// Starts an upload: the file exists, invisible, until [`QueueStore::queue_file_complete`].
    /// Returns its key.
    async fn queue_file_begin(&self, file: &NewFile) -> Result<i64, StoreError>;

    /// Appends lines to an upload in progress, in one transaction.
    async fn queue_file_append(&self, file_key: i64, lines: &[FileLine]) -> Result<(), StoreError>;

    /// Makes an upload visible, with its size in bytes and its number of stored lines (an
    /// unknown key is `StoreError::Db(RowNotFound)`).
    async fn queue_file_complete(
        &self,
        file_key: i64,
        bytes: u64,
        lines: u64,
    ) -> Result<(), StoreError>;

    /// Removes an upload that did not complete, with its lines.
    async fn queue_file_discard(&self, file_key: i64) -> Result<(), StoreError>;

    /// A complete file of `owner` (uploads and result files).
    async fn queue_file(&self, owner: &str, id: &str) -> Result<Option<FileRecord>, StoreError>;

    /// Complete files of `owner`, in key (creation) order as `page` asks; an `after` that is not
    /// one of the owner's files gives an empty page.
    async fn queue_files(
        &self,
        owner: &str,
        page: &ListPage,
    ) -> Result<Vec<FileRecord>, StoreError>;

    /// Deletes a file of `owner` and its lines; refused while it is the input of a batch that
    /// has not ended.
    async fn queue_file_delete(&self, owner: &str, id: &str) -> Result<FileDeletion, StoreError>;

    /// Lines of an uploaded file with line numbers above `after`, in order, at most `limit`.
    async fn queue_file_lines(
        &self,
        file_key: i64,
        after: u32,
        limit: u32,
    ) -> Result<Vec<FileLine>, StoreError>;

    // === batches ===

    /// Creates a batch in `validating`; returns its key.
    async fn queue_batch_create(&self, batch: &NewBatch) -> Result<i64, StoreError>;

    /// A batch by id; of `owner` only, when given.
    async fn queue_batch(
        &self,
        owner: Option<&str>,
        id: &str,
    ) -> Result<Option<BatchRecord>, StoreError>;

    /// Batches of `owner`, newest first, after the one with id `after` (not one of the owner's:
    /// an empty page).
    async fn queue_batches(
        &self,
        owner: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BatchRecord>, StoreError>;

    /// Every batch that has not ended (validating, in progress, finalizing, cancelling), oldest
    /// first.
    async fn queue_open_batches(&self) -> Result<Vec<BatchRecord>, StoreError>;

    /// Adds valid request lines (pending) to a batch that is validating; a line already added
    /// (a validation restarted after a crash) is left as it is. A batch no longer validating
    /// (cancelled meanwhile) takes none: `StoreError::Db(RowNotFound)`.
    async fn queue_lines_add(&self, batch_key: i64, lines: &[NewLine]) -> Result<(), StoreError>;

    /// Validation passed: `validating` → `in_progress` with `total` set to its lines. False (and
    /// nothing changed) when the batch is no longer validating (it was cancelled meanwhile).
    async fn queue_batch_start(&self, batch_key: i64, at: Millis) -> Result<bool, StoreError>;

    /// Validation failed: `validating` → `failed` with `errors` (a JSON array); its lines go.
    async fn queue_batch_reject(
        &self,
        batch_key: i64,
        errors: &str,
        at: Millis,
    ) -> Result<(), StoreError>;

    /// Asks to cancel a batch of `owner`: one validating or in progress becomes `cancelling`;
    /// any other stays as it is. `None` when there is no such batch.
    async fn queue_batch_cancel(
        &self,
        owner: &str,
        id: &str,
        at: Millis,
    ) -> Result<Option<BatchRecord>, StoreError>;

    /// Ends every pending line of a batch with `error` (expired, cancelled); returns how many.
    async fn queue_lines_close(
        &self,
        batch_key: i64,
        error: &LineError,
        at: Millis,
    ) -> Result<u64, StoreError>;

    /// Ends a batch that is not final: its status, `finalizing_at` and the end's own time, and
    /// its result files, all at once (a batch that never started loses the lines its validation
    /// had added). False (nothing changed) when it had already ended.
    async fn queue_batch_finish(
        &self,
        batch_key: i64,
        end: BatchEnd,
        at: Millis,
        files: &[ResultFile],
    ) -> Result<bool, StoreError>;

    // === lines ===

    /// Claims up to `limit` pending lines of in-progress batches whose requests name `model`,
    /// oldest batch first and in line order; they are in flight when this returns.
    async fn queue_claim(&self, model: &str, limit: u32) -> Result<Vec<ClaimedLine>, StoreError>;

    /// Writes line results, each only if its line is still in flight (so a result is written at
    /// most once), and counts them into their batches, in one transaction. Returns how many
    /// were written.
    async fn queue_record(&self, results: &[LineResult]) -> Result<u64, StoreError>;

    /// Lines in flight go back to pending (a wait, a pause), to be claimed again.
    async fn queue_release(&self, lines: &[(i64, u32)]) -> Result<(), StoreError>;

    /// When a dispatcher takes the queue on: every line left in flight (by this process before
    /// a restart, or by the instance that ran the queue and died) goes back to pending.
    /// Returns the lines sent back.
    async fn queue_recover_lines(&self) -> Result<u64, StoreError>;

    /// Removes the uploads begun before `before` that were never completed (their process
    /// died mid-upload), with their lines. Returns the uploads removed.
    async fn queue_drop_unfinished_uploads(&self, before: Millis) -> Result<u64, StoreError>;

    /// Pending lines per route model, for lines of every batch.
    async fn queue_pending(&self) -> Result<Vec<PendingLines>, StoreError>;

    /// Results of a batch's lines that ended in `kind`'s file, line numbers above `after`, in
    /// order, at most `limit`.
    async fn queue_results(
        &self,
        batch_key: i64,
        kind: ResultKind,
        after: u32,
        limit: u32,
    ) -> Result<Vec<StoredResult>, StoreError>;

    /// Deletes batches that ended before `before` with their lines and result files, and
    /// uploaded files created before `before` that no open batch reads.
    async fn queue_prune(&self, before: Millis) -> Result<QueuePruned, StoreError>;
}
