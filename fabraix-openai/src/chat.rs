//! [`Chat`]: async-openai's chat API, with every completion logged.

use std::fmt;

use async_openai::RequestOptions;
use async_openai::config::Config;
use async_openai::error::OpenAIError;
use async_openai::traits::RequestOptionsBuilder;
use async_openai::types::chat::{CreateChatCompletionRequest, CreateChatCompletionResponse};
use fabraix::{Client, TraceId};

use crate::events::{self, Delivery};
use crate::recorder::Recorder;
use crate::stream::ChatStream;

/// async-openai's [`Chat`](async_openai::Chat) API, logging every chat completion to
/// Fabraix: the request as a `model_input` event, the answer as a `model_output` event, a
/// call that fails as an `error` event.
///
/// Wrap once, with [`Chat::new`] or [`ChatExt::fabraix`], and call [`create`](Self::create)
/// and [`create_stream`](Self::create_stream) as on async-openai's own. The events go to
/// the agent run current where a call is made (inside a `#[fabraix::agent]` fn, or a
/// scope), or to the trace given with [`in_trace`](Self::in_trace). Outside both, calls go
/// through unlogged. Logging never fails a call and never waits on the network.
///
/// ```no_run
/// use async_openai::types::chat::{ChatCompletionRequestUserMessage, CreateChatCompletionRequestArgs};
/// use fabraix_openai::ChatExt;
///
/// #[fabraix::agent(id = "support-bot", system_prompt = "You are a support assistant.")]
/// async fn answer(openai: &async_openai::Client<async_openai::config::OpenAIConfig>)
///     -> Result<(), Box<dyn std::error::Error>>
/// {
///     let request = CreateChatCompletionRequestArgs::default()
///         .model("gpt-4o-mini")
///         .messages(vec![ChatCompletionRequestUserMessage::from("Where is my parcel?").into()])
///         .build()?;
///     let response = openai.chat().fabraix().create(request).await?; // logged in this run
///     println!("{:?}", response.choices[0].message.content);
///     Ok(())
/// }
/// ```
pub struct Chat<'c, C: Config> {
    inner: async_openai::Chat<'c, C>,
    trace: Option<(Client, TraceId)>,
}

/// `.fabraix()` on async-openai's [`Chat`](async_openai::Chat): `client.chat().fabraix()`.
pub trait ChatExt<'c, C: Config> {
    /// This chat API, with every completion logged to Fabraix.
    fn fabraix(self) -> Chat<'c, C>;
}

impl<'c, C: Config> ChatExt<'c, C> for async_openai::Chat<'c, C> {
    fn fabraix(self) -> Chat<'c, C> {
        Chat::from(self)
    }
}

impl<'c, C: Config> From<async_openai::Chat<'c, C>> for Chat<'c, C> {
    fn from(inner: async_openai::Chat<'c, C>) -> Self {
        Self { inner, trace: None }
    }
}

impl<'c, C: Config> Chat<'c, C> {
    /// The chat API of `client`, with every completion logged to Fabraix.
    pub fn new(client: &'c async_openai::Client<C>) -> Self {
        Self::from(client.chat())
    }

    /// Logs to the run `trace_id` through `client`, wherever the calls are made, instead
    /// of the current run: for agents that register their runs themselves
    /// ([`Client::register_agent_run`]) rather than with `#[fabraix::agent]`.
    pub fn in_trace(mut self, client: Client, trace_id: TraceId) -> Self {
        self.trace = Some((client, trace_id));
        self
    }

    /// async-openai's chat API inside, for the calls this wrapper does not log.
    pub fn inner(&self) -> &async_openai::Chat<'c, C> {
        &self.inner
    }

    /// Creates a chat completion, as [`async_openai::Chat::create`]; logs the request and
    /// the answer.
    pub async fn create(
        &self,
        request: CreateChatCompletionRequest,
    ) -> Result<CreateChatCompletionResponse, OpenAIError> {
        let recorder = self.recorder();
        if let Some(event) = events::model_input(&request) {
            recorder.log(event);
        }
        let answered = self.inner.create(request).await;
        match &answered {
            Ok(completion) => {
                if let Some(event) = events::model_output(completion, Delivery::Whole, &[]) {
                    recorder.log(event);
                }
            }
            Err(error) => recorder.log(events::model_error(error)),
        }
        answered
    }

    /// Creates a streamed chat completion, as [`async_openai::Chat::create_stream`]; logs
    /// the request now and the answer, assembled from the chunks, when the stream ends or
    /// is dropped (see [`ChatStream`]). The run is the one current here, wherever the
    /// stream is read afterwards.
    pub async fn create_stream(
        &self,
        mut request: CreateChatCompletionRequest,
    ) -> Result<ChatStream, OpenAIError> {
        let recorder = self.recorder();
        // What async-openai sends; logged as such.
        if request.stream.is_none() {
            request.stream = Some(true);
        }
        if let Some(event) = events::model_input(&request) {
            recorder.log(event);
        }
        match self.inner.create_stream(request).await {
            Ok(inner) => Ok(ChatStream::new(inner, recorder)),
            Err(error) => {
                recorder.log(events::model_error(&error));
                Err(error)
            }
        }
    }

    fn recorder(&self) -> Recorder {
        match &self.trace {
            Some((client, trace_id)) => Recorder::Trace {
                client: client.clone(),
                trace_id: *trace_id,
            },
            None => Recorder::current(),
        }
    }
}

/// Request options (headers, query, path) as on async-openai's `Chat`.
impl<C: Config> RequestOptionsBuilder for Chat<'_, C> {
    fn options_mut(&mut self) -> &mut RequestOptions {
        self.inner.options_mut()
    }

    fn options(&self) -> &RequestOptions {
        self.inner.options()
    }
}

impl<C: Config> fmt::Debug for Chat<'_, C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chat")
            .field(
                "trace_id",
                &self.trace.as_ref().map(|(_, trace_id)| trace_id),
            )
            .finish_non_exhaustive()
    }
}
