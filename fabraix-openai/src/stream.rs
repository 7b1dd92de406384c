//! [`ChatStream`]: a streamed answer handed on chunk by chunk, logged whole once.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use async_openai::error::OpenAIError;
use async_openai::types::chat::{
    ChatCompletionResponseStream, CreateChatCompletionResponse, CreateChatCompletionStreamResponse,
};
use futures_core::Stream;

use crate::assemble::Assembler;
use crate::events::{self, Delivery};
use crate::recorder::Recorder;

/// A streamed chat completion, from [`Chat::create_stream`](crate::Chat::create_stream).
///
/// Yields every chunk (and every error) of async-openai's stream unchanged, the moment it
/// arrives. Meanwhile it assembles the answer from the deltas: the text, every tool call
/// with its whole arguments, the finish reason, and the usage when the server sends it
/// (`stream_options.include_usage`). The answer is logged as one `model_output` event in the
/// run that was current when the call was made, once:
///
/// - when the stream ends;
/// - or, if the stream is dropped before its end, when it is dropped: what had arrived,
///   marked `"cut_short": true`. A stream that met an error is marked so too, with the
///   errors in `stream_errors`.
///
/// [`completion`](Self::completion) gives the answer assembled so far, in the shape of a
/// plain [`Chat::create`](crate::Chat::create) answer, so a loop handles both alike.
///
/// `ChatStream` is `Unpin`: call `next()` (from `futures::StreamExt` or
/// `tokio_stream::StreamExt`) on it directly.
#[must_use = "streams do nothing unless polled"]
pub struct ChatStream {
    inner: ChatCompletionResponseStream,
    assembler: Assembler,
    stream_errors: Vec<String>,
    recorder: Recorder,
    logged: bool,
}

impl ChatStream {
    pub(crate) fn new(inner: ChatCompletionResponseStream, recorder: Recorder) -> Self {
        Self {
            inner,
            assembler: Assembler::default(),
            stream_errors: Vec::new(),
            recorder,
            logged: false,
        }
    }

    /// The answer assembled from the chunks received so far (all of it, once the stream has
    /// ended): text, tool calls with their arguments joined, finish reasons, usage.
    pub fn completion(&self) -> CreateChatCompletionResponse {
        self.assembler.completion()
    }

    /// Whether the stream has ended (and its answer has been logged).
    pub fn is_finished(&self) -> bool {
        self.logged
    }

    /// Logs the answer, the first time only.
    fn log(&mut self, delivery: Delivery) {
        if std::mem::replace(&mut self.logged, true) {
            return;
        }
        let delivery = match delivery {
            Delivery::Streamed if !self.stream_errors.is_empty() => Delivery::CutShort,
            delivery => delivery,
        };
        let completion = self.assembler.completion();
        if let Some(event) = events::model_output(&completion, delivery, &self.stream_errors) {
            self.recorder.log(event);
        }
    }
}

impl Stream for ChatStream {
    type Item = Result<CreateChatCompletionStreamResponse, OpenAIError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.logged {
            return Poll::Ready(None);
        }
        let polled = this.inner.as_mut().poll_next(cx);
        match &polled {
            Poll::Ready(Some(Ok(chunk))) => this.assembler.add(chunk),
            Poll::Ready(Some(Err(error))) => this.stream_errors.push(error.to_string()),
            Poll::Ready(None) => this.log(Delivery::Streamed),
            Poll::Pending => {}
        }
        polled
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.logged {
            (0, Some(0))
        } else {
            self.inner.size_hint()
        }
    }
}

impl Drop for ChatStream {
    fn drop(&mut self) {
        // Queuing an event never blocks, so this is safe wherever the stream is dropped.
        self.log(Delivery::CutShort);
    }
}

impl fmt::Debug for ChatStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChatStream")
            .field("finished", &self.logged)
            .field("stream_errors", &self.stream_errors)
            .finish_non_exhaustive()
    }
}
