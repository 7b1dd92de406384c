//! What the exporter's queue and the spool's thread say to each other. The queue decides
//! (what to write, delete and load); the spool carries it out in order and answers with
//! what it found, in the order it happened.
// Without the feature the queue is never given a spool: only its side of this is used.
#![cfg_attr(not(feature = "spool"), allow(dead_code))]

use std::sync::Arc;

use tokio::sync::oneshot;

use super::super::Logged;
use crate::model::TraceId;

/// The own file's number; files taken over are numbered from 1, oldest first.
pub(crate) const OWN: u32 = 0;

/// Where one record is: a file of the client's and a row in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct Row {
    pub file: u32,
    pub id: i64,
}

/// An event to write to the own file as row `id`.
#[derive(Debug)]
pub(crate) struct Record {
    pub id: i64,
    pub logged: Arc<Logged>,
    /// Also held in memory by the queue (not only on disk).
    pub resident: bool,
}

/// What the queue asks of the spool.
#[derive(Debug)]
pub(crate) enum Command {
    Write(Vec<Record>),
    /// Delivered (or given up on): gone from the spool.
    Delete(Vec<Row>),
    /// The next records of each trace, up to a number, that are on disk only.
    Load(Vec<(TraceId, usize)>),
    /// Answered once everything before it is committed.
    Sync(oneshot::Sender<()>),
    /// The client is gone, or its process is exiting: commit, close, delete the files
    /// left empty, then answer (if asked to).
    Close(Option<oneshot::Sender<()>>),
}

/// What the spool tells the queue, in the order it happened.
#[derive(Debug)]
pub(crate) enum Reply {
    /// Records of earlier writers, per trace, now this client's to send.
    TakenOver(Vec<(TraceId, u64)>),
    /// The first search of the folder is done.
    Opened,
    Loaded(Vec<Loaded>),
    /// Removed by the size or age cap.
    Dropped(Vec<Dropped>),
    /// The own file cannot be written: these traces' records of the failed write (those
    /// on disk only) are lost, and the queue keeps to memory from now on.
    Unwritable {
        lost: Vec<TraceId>,
    },
}

#[derive(Debug)]
pub(crate) struct Loaded {
    pub trace: TraceId,
    pub records: Vec<(Row, Logged)>,
    /// Fewer than asked: nothing else of the trace was on disk when this was read.
    pub exhausted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Dropped {
    pub trace: TraceId,
    pub row: Row,
    /// Loaded or written from memory (the queue may still hold it), rather than on disk only.
    pub resident: bool,
}
