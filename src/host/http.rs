//! Outbound HTTP for components: `wasi:http/outgoing-handler` (0.2.x,
//! through wasmtime-wasi-http) and the unversioned `fermyon:spin/http` of
//! Spin SDK 2 and older (`send-request`, the whole body at once).
//!
//! Both go through `allowed_outbound_hosts` for `http` and `https` as in
//! Spin: a refused request is `HTTP-request-denied` (wasi:http, returned by
//! `outgoing-handler.handle` itself, before any body is written) or
//! `destination-not-allowed` (fermyon:spin/http), and the refusal is logged
//! once per host with the entry that would allow it. Every timeout of a
//! request (connect, first byte, between bytes) is cut to what is left of
//! the message's deadline, and the connection belongs to the instance: when
//! the message ends, its requests end too. The destination checked is read
//! (`destination::http`) from the very `http::Uri` that is sent; a URI with
//! a zone id, user information or any other double reading is
//! `HTTP-request-URI-invalid` / `invalid-url`. Redirects are not followed:
//! a 3xx response is the guest's to read.
//!
//! Not owned here: `wasi:http/types` (wasmtime-wasi-http implements it);
//! incoming HTTP (a Redis trigger has none).

use super::reply_bounds::{self, MessageBudget};
use super::{ComponentHost, HasHost, HostData, HostView, Refused, destination};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource, ResourceTable};
use wasmtime_wasi_http::p2::HttpResult;
use wasmtime_wasi_http::p2::bindings::http::{outgoing_handler, types as wasi_types};
use wasmtime_wasi_http::p2::types::{HostFutureIncomingResponse, HostOutgoingRequest};
use wasmtime_wasi_http::{
    Error as HttpError, RequestOptions, WasiBody, WasiHttp, WasiHttpCtx, WasiHttpCtxView,
    WasiHttpHooks, WasiHttpView,
};

mod bindings {
    wasmtime::component::bindgen!({
        inline: "
            package spin-redis:host;
            world http {
                import fermyon:spin/http;
            }
        ",
        path: ["wit/spin/fermyon-spin"],
        imports: { default: async | trappable },
    });
}

use bindings::fermyon::spin::http as spin_http;
use bindings::fermyon::spin::http_types;

/// The Spin interfaces [`link`] defines (besides `wasi:http`).
pub const SPIN_INTERFACES: &[&str] = &["fermyon:spin/http", "fermyon:spin/http-types"];

/// Whether `name` is a `wasi:http` 0.2 interface that [`link`] defines.
pub fn is_wasi_http(name: &str) -> bool {
    ["wasi:http/types@0.2.", "wasi:http/outgoing-handler@0.2."]
        .iter()
        .any(|p| name.starts_with(p))
}

/// One instance's HTTP state.
pub struct InstanceHttp {
    ctx: WasiHttpCtx,
    hooks: Hooks,
}

struct Hooks {
    component: Arc<ComponentHost>,
    deadline: Instant,
}

impl InstanceHttp {
    pub fn new(component: Arc<ComponentHost>, deadline: Instant) -> InstanceHttp {
        InstanceHttp {
            ctx: WasiHttpCtx::new(),
            hooks: Hooks {
                component,
                deadline,
            },
        }
    }

    /// The view wasmtime-wasi-http works on (for `WasiHttpView`).
    pub fn view<'a>(&'a mut self, table: &'a mut ResourceTable) -> WasiHttpCtxView<'a> {
        WasiHttpCtxView {
            ctx: &mut self.ctx,
            table,
            hooks: &mut self.hooks,
        }
    }
}

/// `options` with every timeout cut to what is left before `deadline`.
fn bounded(options: Option<RequestOptions>, deadline: Instant) -> RequestOptions {
    let left = deadline.saturating_duration_since(Instant::now());
    let cut = |d: Option<Duration>| Some(d.map_or(left, |d| d.min(left)));
    let o = options.unwrap_or_default();
    RequestOptions {
        connect_timeout: cut(o.connect_timeout),
        first_byte_timeout: cut(o.first_byte_timeout),
        between_bytes_timeout: cut(o.between_bytes_timeout),
    }
}

type ResponseFuture = Box<
    dyn Future<
            Output = Result<
                (
                    http::Response<WasiBody>,
                    Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                ),
                HttpError,
            >,
        > + Send,
>;

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> ResponseFuture {
        // The request's own URI is what `default_send_request` connects to.
        if let Err(refused) = self
            .component
            .check_outbound(destination::http(request.uri()))
        {
            return Box::new(async move {
                Err(match refused {
                    Refused::BadUrl => HttpError::HttpRequestUriInvalid,
                    Refused::NotAllowed(_) => HttpError::HttpRequestDenied,
                })
            });
        }
        let options = bounded(options, self.deadline);
        Box::new(async move {
            let (response, io) =
                wasmtime_wasi_http::default_send_request(request, Some(options)).await?;
            Ok((
                response.map(BodyExt::boxed_unsync),
                Box::new(io) as Box<dyn Future<Output = Result<(), HttpError>> + Send>,
            ))
        })
    }
}

/// The `wasi:http/outgoing-handler` instance wasmtime-wasi-http 48 defines
/// (components importing any 0.2.x version link to it).
const OUTGOING_HANDLER: &str = "wasi:http/outgoing-handler@0.2.12";

/// `wasi:http/outgoing-handler.handle` with the allowed-hosts check in front
/// of wasmtime-wasi-http's own.
struct OutgoingView<'a> {
    http: WasiHttpCtxView<'a>,
    component: Arc<ComponentHost>,
}

fn outgoing_view<T: HasHost>(state: &mut T) -> OutgoingView<'_> {
    let HostView { host, table } = state.host_view();
    let component = host.component.clone();
    OutgoingView {
        http: host.http.view(table),
        component,
    }
}

impl OutgoingView<'_> {
    fn handle(
        &mut self,
        request: Resource<HostOutgoingRequest>,
        options: Option<Resource<wasi_types::RequestOptions>>,
    ) -> HttpResult<Resource<HostFutureIncomingResponse>> {
        let req = self.http.table.get(&request)?;
        let scheme = match &req.scheme {
            Some(wasi_types::Scheme::Http) => "http",
            Some(wasi_types::Scheme::Https) | None => "https",
            Some(wasi_types::Scheme::Other(s)) => s.as_str(),
        };
        // Read as wasmtime-wasi-http will build the request's URI; the
        // request itself is checked again in `send_request`.
        let read = destination::http_parts(scheme, req.authority.as_deref().unwrap_or(""));
        if let Err(refused) = self.component.check_outbound(read) {
            // The request is the handler's to give. Its body may still be
            // written after this (SDKs write it before they look at the
            // response): drain it, so that the handler sees this error and
            // not a closed stream. The draining ends with the body, at the
            // latest when the instance is dropped.
            let req = self.http.table.delete(request)?;
            if let Some(mut body) = req.body {
                tokio::spawn(async move { while let Some(Ok(_)) = body.frame().await {} });
            }
            return Err(match refused {
                Refused::BadUrl => wasi_types::ErrorCode::HttpRequestUriInvalid,
                Refused::NotAllowed(_) => wasi_types::ErrorCode::HttpRequestDenied,
            }
            .into());
        }
        outgoing_handler::Host::handle(&mut self.http, request, options)
    }
}

/// Adds `wasi:http` (0.2) and `fermyon:spin/http` to `linker`.
pub fn link<T: HasHost + WasiHttpView>(linker: &mut Linker<T>) -> wasmtime::Result<()> {
    let options = wasmtime_wasi_http::p2::bindings::LinkOptions::default();
    wasi_types::add_to_linker::<T, WasiHttp>(linker, &options.into(), T::http)?;
    type Handled = Result<Resource<HostFutureIncomingResponse>, wasi_types::ErrorCode>;
    linker.instance(OUTGOING_HANDLER)?.func_wrap(
        "handle",
        |mut store: StoreContextMut<'_, T>,
         (request, options): (
            Resource<HostOutgoingRequest>,
            Option<Resource<wasi_types::RequestOptions>>,
        )|
         -> wasmtime::Result<(Handled,)> {
            match outgoing_view(store.data_mut()).handle(request, options) {
                Ok(response) => Ok((Ok(response),)),
                // An error code goes to the guest; anything else traps.
                Err(e) => Ok((Err(e.downcast()?),)),
            }
        },
    )?;
    spin_http::add_to_linker::<T, HostData>(linker, T::host_view)?;
    http_types::add_to_linker::<T, HostData>(linker, T::host_view)?;
    Ok(())
}

impl http_types::Host for HostView<'_> {}

impl spin_http::Host for HostView<'_> {
    async fn send_request(
        &mut self,
        req: http_types::Request,
    ) -> wasmtime::Result<Result<http_types::Response, http_types::HttpError>> {
        let component = self.host.component.clone();
        let deadline = self.host.deadline;
        let budget = self.host.budget.clone();
        Ok(send_v1(&component, deadline, &budget, req).await)
    }
}

/// Aborts the task driving a connection when dropped, so a request ends
/// with the instance that made it.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

async fn send_v1(
    component: &ComponentHost,
    deadline: Instant,
    budget: &MessageBudget,
    req: http_types::Request,
) -> Result<http_types::Response, http_types::HttpError> {
    use http_types::HttpError as E;
    // Parsed once: the destination is read from this `Uri`, and this `Uri`
    // is sent. A relative URI would be a request to "self": a Redis trigger
    // has no HTTP origin, so it is invalid.
    let uri: http::Uri = req.uri.parse().map_err(|_| E::InvalidUrl)?;
    match component.check_outbound(destination::http(&uri)) {
        Ok(_) => {}
        Err(Refused::BadUrl) => return Err(E::InvalidUrl),
        Err(Refused::NotAllowed(_)) => return Err(E::DestinationNotAllowed),
    }
    if !req.params.is_empty() {
        tracing::debug!(component = %component.id, "fermyon:spin/http request params are deprecated and ignored");
    }
    let mut builder = http::Request::builder()
        .method(match req.method {
            http_types::Method::Get => http::Method::GET,
            http_types::Method::Post => http::Method::POST,
            http_types::Method::Put => http::Method::PUT,
            http_types::Method::Delete => http::Method::DELETE,
            http_types::Method::Patch => http::Method::PATCH,
            http_types::Method::Head => http::Method::HEAD,
            http_types::Method::Options => http::Method::OPTIONS,
        })
        .uri(uri.clone());
    if let Some(authority) = uri.authority() {
        builder = builder.header(http::header::HOST, authority.as_str());
    }
    for (k, v) in &req.headers {
        builder = builder.header(k, v);
    }
    let body = Full::new(Bytes::from(req.body.unwrap_or_default()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let request = builder.body(body).map_err(|_| E::RequestError)?;
    let (response, io) = wasmtime_wasi_http::default_send_request(
        request,
        Some(bounded(None, deadline)),
    )
    .await
    .map_err(|e| {
        tracing::debug!(component = %component.id, error = ?e, "fermyon:spin/http request failed");
        E::RequestError
    })?;
    let _io = AbortOnDrop(tokio::spawn(async move {
        if let Err(e) = io.await {
            tracing::debug!(error = ?e, "an outbound HTTP connection ended with an error");
        }
    }));
    let (parts, body) = response.into_parts();
    // The body is read whole: at most `max_reply`, and no more than is
    // left of the message's total. The interface's errors carry no text, so
    // a body past the cap is `runtime-error` and a log line naming the cap.
    let max_reply = budget.limits().max_reply;
    let cap = max_reply.min(budget.left());
    let body = match Limited::new(body, usize::try_from(cap).unwrap_or(usize::MAX))
        .collect()
        .await
    {
        Ok(body) => body.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => {
            let why = if cap < max_reply {
                format!(
                    "the response body is larger than what is left ({}) of the cap of {} per message received through the host APIs (--max-host-received)",
                    reply_bounds::show(cap),
                    reply_bounds::show(budget.limits().max_received)
                )
            } else {
                format!(
                    "the response body is larger than the host's cap of {} per response (--max-host-reply)",
                    reply_bounds::show(max_reply)
                )
            };
            tracing::warn!(component = %component.id, host = uri.host().unwrap_or(""), reason = %why, "fermyon:spin/http response refused: runtime-error");
            return Err(E::RuntimeError);
        }
        Err(_) => return Err(E::RuntimeError),
    };
    if let Err(why) = budget.charge(body.len() as u64) {
        tracing::warn!(component = %component.id, host = uri.host().unwrap_or(""), reason = %why, "fermyon:spin/http response refused: runtime-error");
        return Err(E::RuntimeError);
    }
    let headers = parts
        .headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    Ok(http_types::Response {
        status: parts.status.as_u16(),
        headers: Some(headers),
        body: Some(body.to_vec()),
    })
}
