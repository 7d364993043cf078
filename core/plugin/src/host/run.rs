//! Running one registered Lua function on a thread the host created: the
//! CPU slice reset at every resume, the call's deadline, the stop that
//! poisons a plugin, and the pool of finished threads.

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use mlua::{LuaSerdeExt, MultiValue, Table, Value};
use serde_json::Map;
use tracing::warn;

use crate::sandbox::{Ctx, Shared, Stop};

use super::load::Slot;

/// A check's or notify hook's configured options (overlaid on its defaults).
pub type Options = Map<String, serde_json::Value>;

/// Resets the plugin's CPU slice every time its Lua thread is resumed:
/// each poll of the thread's future is one resume (platform-facts.md:
/// budget the slice between awaits, not the whole call).
struct Sliced<F> {
    inner: Pin<Box<F>>,
    shared: Rc<Shared>,
}

impl<F: Future> Future for Sliced<F> {
    type Output = F::Output;
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let start = crate::clock::coarse_now();
        self.shared.slice_start.set(start);
        let r = self.inner.as_mut().poll(cx);
        // Time in Lua, on the coarse clock: a poll shorter than a tick
        // counts a whole tick as often as it straddles one, so the sum is
        // right on average at the cost of one vDSO read.
        let ran = crate::clock::coarse_now().saturating_sub(start);
        self.shared.stats.borrow_mut().cpu += ran;
        r
    }
}

/// Runs `reg.func` with `args` on a host-created Lua thread under the
/// slice and `timeout`. Err: the message, and whether the plugin was stopped.
pub(super) async fn call(
    slot: &Slot,
    lua: &mlua::Lua,
    func: &mlua::Function,
    args: MultiValue,
    timeout: Duration,
) -> Result<MultiValue, (String, Option<Stop>)> {
    let sh = &slot.shared;
    let thread = host_thread_for(lua, func).map_err(|e| (e.to_string(), None))?;
    let key = thread.to_pointer() as usize;
    let fut = thread
        .clone()
        .into_async::<MultiValue>(args)
        .map_err(|e| (e.to_string(), None::<Stop>));
    let res: Result<MultiValue, (String, Option<Stop>)> = match fut {
        Ok(f) => {
            let sliced = Sliced {
                inner: Box::pin(f),
                shared: slot.shared.clone(),
            };
            match tokio::time::timeout_at(crate::clock::now() + timeout, sliced).await {
                Ok(Ok(v)) => Ok(v),
                Ok(Err(e)) => Err((error_text(&e), None)),
                Err(_) => Err((
                    format!("timeout after {:.1} s", timeout.as_secs_f64()),
                    None,
                )),
            }
        }
        Err(e) => Err(e),
    };
    if let Some(ctx) = lua.app_data_ref::<Ctx>() {
        // A finished thread is kept for the next call; one left suspended
        // (timeout) is dropped, as is every thread of a stopped plugin.
        let done = matches!(
            thread.status(),
            mlua::thread::ThreadStatus::Finished | mlua::thread::ThreadStatus::Error
        );
        let mut pool = ctx.thread_pool.borrow_mut();
        if done && sh.poisoned.get().is_none() && pool.len() < THREAD_POOL {
            pool.push(thread);
        } else {
            ctx.host_threads.borrow_mut().remove(&key);
        }
    }
    match res {
        Ok(v) => Ok(v),
        Err((msg, _)) => {
            let stop = sh
                .poisoned
                .get()
                .or_else(|| msg.contains("not enough memory").then_some(Stop::Memory));
            match stop {
                Some(s) => {
                    sh.poisoned.set(Some(s));
                    let m = sh.stop_message(s);
                    warn!(plugin = sh.name, "{m}");
                    let mut st = sh.stats.borrow_mut();
                    match s {
                        Stop::Cpu => st.stopped_cpu += 1,
                        Stop::Memory => st.stopped_memory += 1,
                    }
                    Err((m, Some(s)))
                }
                None => Err((msg, None)),
            }
        }
    }
}

/// Threads kept per plugin state for reuse (about the calls in flight).
const THREAD_POOL: usize = 256;

/// A host thread running `func`: a finished one reset, else a new one.
fn host_thread_for(lua: &mlua::Lua, func: &mlua::Function) -> mlua::Result<mlua::Thread> {
    let Some(ctx) = lua.app_data_ref::<Ctx>() else {
        return Err(mlua::Error::RuntimeError("plugin context lost".into()));
    };
    if let Some(t) = ctx.thread_pool.borrow_mut().pop() {
        if t.reset(func.clone()).is_ok() {
            return Ok(t);
        }
        ctx.host_threads
            .borrow_mut()
            .remove(&(t.to_pointer() as usize));
    }
    let t = lua.create_thread(func.clone())?;
    ctx.host_threads
        .borrow_mut()
        .insert(t.to_pointer() as usize);
    Ok(t)
}

/// The text of a Lua error without mlua's wrapping and traceback.
fn error_text(e: &mlua::Error) -> String {
    match e {
        mlua::Error::CallbackError { cause, .. } => error_text(cause),
        mlua::Error::RuntimeError(m) => m.lines().next().unwrap_or_default().to_string(),
        mlua::Error::MemoryError(m) => m.clone(),
        other => other
            .to_string()
            .lines()
            .next()
            .unwrap_or_default()
            .to_string(),
    }
}

/// `defaults` overlaid with the configured options (the configuration wins).
pub(super) fn options(lua: &mlua::Lua, defaults: &Table, opts: &Options) -> mlua::Result<Table> {
    let t = lua.create_table()?;
    for pair in defaults.pairs::<Value, Value>() {
        let (k, v) = pair?;
        t.raw_set(k, v)?;
    }
    for (k, v) in opts {
        t.raw_set(k.as_str(), lua.to_value(v)?)?;
    }
    Ok(t)
}
