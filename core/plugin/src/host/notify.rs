//! Notify hooks: each hook's queue, delivered in order, one event at a time.

use std::rc::Rc;
use std::time::{Duration, SystemTime};

use mlua::{MultiValue, Value};
use tokio::sync::mpsc;
use tracing::warn;

use super::load::{current, Kind, Registry};
use super::run::{call, options, Options};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    Instance,
    Group,
    Rs,
    Vs,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Instance => "INSTANCE",
            EventKind::Group => "GROUP",
            EventKind::Rs => "RS",
            EventKind::Vs => "VS",
        }
    }
}

#[derive(Clone, Debug)]
pub struct Event {
    pub seq: u64,
    pub time: SystemTime,
    pub kind: EventKind,
    pub name: String,
    pub state: String,
    pub prev: Option<String>,
    pub priority: Option<u8>,
    pub vs: Option<String>,
}

/// Events for one notify hook, delivered in order, one at a time.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::UnboundedSender<Event>,
}

impl Notifier {
    /// Never blocks; events queue on the plugin thread.
    pub fn send(&self, ev: Event) {
        let _ = self.tx.send(ev);
    }
}

async fn deliver(reg: &Registry, name: &str, opts: &Options, ev: &Event) {
    let Some(slot) = reg.notifiers.get(name) else {
        warn!("notify: no plugin named {name}");
        return;
    };
    let (lua, r) = match current(slot, Kind::Notify, name) {
        Ok(c) => c,
        Err(e) => {
            warn!("notify {name} (event {}): {e}", ev.seq);
            return;
        }
    };
    slot.shared.stats.borrow_mut().calls += 1;
    let args = (|| -> mlua::Result<MultiValue> {
        let t = lua.create_table()?;
        t.set("seq", ev.seq)?;
        let secs = ev
            .time
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        t.set("time", secs)?;
        t.set("kind", ev.kind.as_str())?;
        t.set("name", ev.name.as_str())?;
        t.set("state", ev.state.as_str())?;
        t.set("prev", ev.prev.as_deref())?;
        t.set("priority", ev.priority)?;
        t.set("vs", ev.vs.as_deref())?;
        let o = options(&lua, &r.defaults, opts)?;
        Ok(MultiValue::from_iter([Value::Table(t), Value::Table(o)]))
    })();
    let Ok(args) = args else { return };
    // A notify handler may run programs: give it a generous bound.
    let limit = opts
        .get("timeout")
        .and_then(serde_json::Value::as_f64)
        .filter(|t| t.is_finite() && *t > 0.0)
        .map_or(Duration::from_secs(60), |t| {
            Duration::from_secs_f64(t + 5.0)
        });
    if let Err((m, stop)) = call(slot, &lua, &r.func, args, limit).await {
        if stop.is_none() {
            slot.shared.stats.borrow_mut().errors += 1;
        }
        warn!(
            "notify {name} (event {} {} {}): {m}",
            ev.seq, ev.name, ev.state
        );
    }
}

/// Delivers `events` to the hook `name` until its senders are gone.
pub(super) fn spawn_queue(
    reg: Rc<Registry>,
    name: String,
    opts: Options,
    mut events: mpsc::UnboundedReceiver<Event>,
) -> tokio::task::JoinHandle<()> {
    tokio::task::spawn_local(async move {
        while let Some(ev) = events.recv().await {
            deliver(&reg, &name, &opts, &ev).await;
        }
    })
}

impl Notifier {
    pub(super) fn new(tx: mpsc::UnboundedSender<Event>) -> Self {
        Notifier { tx }
    }
}
