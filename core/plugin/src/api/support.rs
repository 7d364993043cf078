//! What every `lb` binding shares: contexts, the `nil, message` return,
//! and option tables decoded into serde-derived structs, with Lua's own
//! coercions (a numeric string is a number, a number is a string) and an
//! error that names the function and the field.

use std::fmt;
use std::marker::PhantomData;

use mlua::{IntoLua, IntoLuaMulti, Lua, LuaSerdeExt, MultiValue, Result, Table, Value};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::sandbox::Ctx;

pub(super) const MIB: usize = 1 << 20;

pub(super) fn err<T>(m: impl Into<String>) -> Result<T> {
    Err(mlua::Error::RuntimeError(m.into()))
}

pub(super) fn plugin_name(lua: &Lua) -> String {
    lua.app_data_ref::<Ctx>()
        .map(|c| c.shared.name.clone())
        .unwrap_or_default()
}

/// `what` may only run in a task: not in the body, not in a coroutine the
/// plugin made (mlua cannot drive async calls there: platform-facts.md).
pub(super) fn task_only(lua: &Lua, what: &str) -> Result<()> {
    let Some(ctx) = lua.app_data_ref::<Ctx>() else {
        return err(format!("{what}: no plugin context"));
    };
    if ctx.in_body.get() {
        return err(format!("{what}: not allowed in the file body"));
    }
    let me = lua.current_thread().to_pointer() as usize;
    if !ctx.host_threads.borrow().contains(&me) {
        return err(format!("{what}: not allowed inside a plugin coroutine"));
    }
    Ok(())
}

/// A binding's result in the Lua convention: the value, or for an
/// expected failure `nil, message`.
pub(super) enum Ret<T> {
    Ok(T),
    Fail(String),
}

impl<T> Ret<T> {
    pub(super) fn fail(e: impl fmt::Display) -> Self {
        Ret::Fail(e.to_string())
    }
}

impl<T: IntoLua> IntoLuaMulti for Ret<T> {
    fn into_lua_multi(self, lua: &Lua) -> Result<MultiValue> {
        match self {
            Ret::Ok(v) => v.into_lua_multi(lua),
            Ret::Fail(m) => (Value::Nil, m).into_lua_multi(lua),
        }
    }
}

/// A result struct as a Lua table (`None` fields left out, so they read
/// as nil; lists as plain tables, as the bindings built them by hand).
pub(super) fn table_of<T: Serialize>(lua: &Lua, v: &T) -> Result<Value> {
    let o = mlua::serde::SerializeOptions::new()
        .set_array_metatable(false)
        .serialize_none_to_null(false);
    lua.to_value_with(v, o)
}

/// `what`'s option table (nil: every default) as `T`. Ill-typed fields
/// raise, naming the field; unknown ones are logged once per plugin state
/// and ignored, as they always were (plugins pass their own option tables
/// on).
pub(super) fn opts<T: DeserializeOwned + Default>(lua: &Lua, what: &str, v: Value) -> Result<T> {
    match &v {
        Value::Nil => return Ok(T::default()),
        Value::Table(t) => warn_unknown::<T>(lua, what, t)?,
        other => {
            return err(format!(
                "{what}: options must be a table, not {}",
                other.type_name()
            ))
        }
    }
    serde_path_to_error::deserialize(mlua::serde::Deserializer::new(v)).map_err(|e| {
        let field = e.path().to_string();
        let why = e.into_inner().to_string();
        let why = why.trim_start_matches("deserialize error: ");
        mlua::Error::RuntimeError(format!("{what}: option `{field}`: {why}"))
    })
}

fn warn_unknown<T: DeserializeOwned>(lua: &Lua, what: &str, t: &Table) -> Result<()> {
    let known = fields_of::<T>();
    for pair in t.pairs::<Value, Value>() {
        let (k, _) = pair?;
        let Value::String(k) = k else { continue };
        let k = k.to_string_lossy();
        if known.contains(&k.as_str()) {
            continue;
        }
        let Some(ctx) = lua.app_data_ref::<Ctx>() else {
            continue;
        };
        if ctx.warned.borrow_mut().insert(format!("{what} {k}")) {
            tracing::warn!(
                "plugin {}: {what}: unknown option `{k}` ignored (known: {})",
                ctx.shared.name,
                known.join(", ")
            );
        }
    }
    Ok(())
}

/// The field names a derived struct asks its deserializer for.
fn fields_of<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Probe<'a>(&'a mut &'static [&'static str]);
    impl<'de> Deserializer<'de> for Probe<'_> {
        type Error = de::value::Error;
        fn deserialize_any<V: Visitor<'de>>(
            self,
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }
        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> std::result::Result<V::Value, Self::Error> {
            *self.0 = fields;
            Err(de::Error::custom("probed"))
        }
        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
            bytes byte_buf option unit unit_struct newtype_struct seq tuple
            tuple_struct map enum identifier ignored_any
        }
    }
    let mut fields: &'static [&'static str] = &[];
    let _ = T::deserialize(Probe(&mut fields));
    fields
}

/// Lua's number-to-string conversion (`%.14g`, and `.0` on an integral float).
fn lua_number_text(n: f64) -> String {
    if n.is_finite() && n.fract() == 0.0 && n.abs() < 1e15 {
        format!("{n:.1}")
    } else {
        format!("{n}")
    }
}

/// A string option; a number is taken as its text, as Lua does.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Text, E> {
                Ok(Text(s.to_string()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Text, E> {
                Ok(Text(n.to_string()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Text, E> {
                Ok(Text(n.to_string()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<Text, E> {
                Ok(Text(lua_number_text(n)))
            }
        }
        d.deserialize_any(V)
    }
}

/// A byte-string option (any Lua string; a number as its text).
#[derive(Clone, Debug, Default)]
pub(super) struct Bytes(pub Vec<u8>);

impl<'de> Deserialize<'de> for Bytes {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Bytes;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_bytes<E: de::Error>(self, b: &[u8]) -> std::result::Result<Bytes, E> {
                Ok(Bytes(b.to_vec()))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Bytes, E> {
                Ok(Bytes(s.as_bytes().to_vec()))
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Bytes, E> {
                Ok(Bytes(n.to_string().into_bytes()))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Bytes, E> {
                Ok(Bytes(n.to_string().into_bytes()))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<Bytes, E> {
                Ok(Bytes(lua_number_text(n).into_bytes()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A number option; a string that reads as one is taken, as Lua does.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Num(pub f64);

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Num, E> {
                Ok(Num(n as f64))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Num, E> {
                Ok(Num(n as f64))
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<Num, E> {
                Ok(Num(n))
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Num, E> {
                s.trim()
                    .parse()
                    .map(Num)
                    .map_err(|_| E::invalid_value(de::Unexpected::Str(s), &self))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer option of type `T` (an integral float or numeric string is
/// taken, as Lua does); out of `T`'s range is an error.
#[derive(Clone, Copy, Debug)]
pub(super) struct Int<T>(pub T);

impl<'de, T: TryFrom<i64>> Deserialize<'de> for Int<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<T: TryFrom<i64>> Visitor<'_> for V<T> {
            type Value = Int<T>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                write!(f, "an integer that fits {}", std::any::type_name::<T>())
            }
            fn visit_i64<E: de::Error>(self, n: i64) -> std::result::Result<Int<T>, E> {
                T::try_from(n)
                    .map(Int)
                    .map_err(|_| E::invalid_value(de::Unexpected::Signed(n), &self))
            }
            fn visit_u64<E: de::Error>(self, n: u64) -> std::result::Result<Int<T>, E> {
                let i = i64::try_from(n)
                    .map_err(|_| E::invalid_value(de::Unexpected::Unsigned(n), &self))?;
                self.visit_i64(i)
            }
            fn visit_f64<E: de::Error>(self, n: f64) -> std::result::Result<Int<T>, E> {
                if n.fract() != 0.0 || !n.is_finite() || n.abs() > 9.0e15 {
                    return Err(E::invalid_value(de::Unexpected::Float(n), &self));
                }
                self.visit_i64(n as i64)
            }
            fn visit_str<E: de::Error>(self, s: &str) -> std::result::Result<Int<T>, E> {
                match s.trim().parse::<f64>() {
                    Ok(n) => self.visit_f64(n),
                    Err(_) => Err(E::invalid_value(de::Unexpected::Str(s), &self)),
                }
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// Bytes that become a Lua string (a `Vec<u8>` would become a list).
pub(super) struct LuaBytes<'a>(pub &'a [u8]);

impl Serialize for LuaBytes<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}
