//! The Nix value model emitters hand to templates.
//!
//! Data is [`Value`]: null, bool, int, float, string, path, list, attrs. Code is
//! [`Expr`] (a variable or selection such as `lib.mkDefault` or
//! `config.resource.hcloud_firewall.dev`, or a function application): its text is
//! assembled only from validated identifiers, escaped attribute names and rendered
//! values, never from free text. It is built in Rust only: its serialized form is
//! a handle into a table of the expressions this process built, so no data (a
//! spec value, a Helm values object passed through) can deserialize into code.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::escape::is_plain_identifier;

/// A Nix value or expression, as emitters build it and templates receive it
/// (serialized with serde, rendered by the `{{nix v}}` helper).
///
/// The serialized form tags every value (`{"str": "x"}`, `{"int": 1}`,
/// `{"null": null}`, `{"attrs": {...}}`, `{"expr": 7}`), so plain JSON from user
/// data never deserializes as a `Value`: convert it with [`Value::from_json`].
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// `true` / `false`
    Bool(bool),
    /// A 64-bit integer, Nix's only integer type.
    Int(i64),
    /// A float; must be finite (Nix has no literal for NaN or infinity).
    Float(f64),
    /// A string, always escaped when rendered.
    Str(String),
    /// A path literal such as `./hosts/cp1.nix`.
    Path(NixPath),
    /// `[ a b ]`
    List(Vec<Value>),
    /// `{ a = 1; }`, keys sorted so output is deterministic.
    Attrs(BTreeMap<String, Value>),
    /// A reference or function application; see [`Expr`].
    Expr(Expr),
}

impl Value {
    /// A string value.
    pub fn str(s: impl Into<String>) -> Value {
        Value::Str(s.into())
    }

    /// A list from any sequence of values.
    pub fn list<I: IntoIterator<Item = V>, V: Into<Value>>(items: I) -> Value {
        Value::List(items.into_iter().map(Into::into).collect())
    }

    /// An attribute set from `(name, value)` pairs; a later duplicate name wins.
    ///
    /// ```
    /// use k8sgen::nix::{Value, to_nix};
    /// let v = Value::attrs([("b", Value::from(1)), ("a", Value::from(true))]);
    /// assert_eq!(to_nix(&v).unwrap(), "{ a = true; b = 1; }");
    /// ```
    pub fn attrs<I, K, V>(pairs: I) -> Value
    where
        I: IntoIterator<Item = (K, V)>,
        K: Into<String>,
        V: Into<Value>,
    {
        Value::Attrs(
            pairs
                .into_iter()
                .map(|(k, v)| (k.into(), v.into()))
                .collect(),
        )
    }

    /// A variable or a selection written in Rust source, e.g. `"lib"` or
    /// `"config.services"`; see [`Expr::var`].
    ///
    /// # Panics
    /// When `dotted` is not identifiers joined by `.` (a bug in the caller).
    pub fn var(dotted: &'static str) -> Value {
        Value::Expr(Expr::var(dotted))
    }

    /// A selection from a variable with runtime attribute names, each escaped:
    ///
    /// ```
    /// use k8sgen::nix::{Value, to_nix};
    /// let fw = Value::select("config.resource.hcloud_firewall", ["dev-1"]);
    /// assert_eq!(to_nix(&fw).unwrap(), "config.resource.hcloud_firewall.dev-1");
    /// let odd = Value::select("config.resource", ["hcloud_server", "cp 1"]);
    /// assert_eq!(to_nix(&odd).unwrap(), r#"config.resource.hcloud_server."cp 1""#);
    /// ```
    ///
    /// # Panics
    /// When `root` is not identifiers joined by `.` (a bug in the caller).
    pub fn select<I, S>(root: &'static str, path: I) -> Value
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Value::Expr(Expr::select(root, path))
    }

    /// The application `fun arg`, e.g. `lib.mkDefault 3` or a terranix reference:
    ///
    /// ```
    /// use k8sgen::nix::{Expr, Value, to_nix};
    /// let d = Value::apply(Expr::var("lib.mkDefault"), Value::from(3));
    /// assert_eq!(to_nix(&d).unwrap(), "lib.mkDefault 3");
    /// let id = Value::apply(
    ///     Expr::select("config.resource.hcloud_firewall", ["dev"]),
    ///     Value::from("id"),
    /// );
    /// assert_eq!(to_nix(&id).unwrap(), r#"config.resource.hcloud_firewall.dev "id""#);
    /// ```
    pub fn apply(fun: Expr, arg: Value) -> Value {
        Value::Expr(fun.apply(arg))
    }
}

impl Value {
    /// Plain JSON as data: objects become attribute sets, strings strings, and so
    /// on. The way to hand user-provided JSON (e.g. Helm values) to a template.
    ///
    /// ```
    /// use k8sgen::nix::{Value, to_nix};
    /// let j = serde_json::json!({"expr": 0, "n": [1, 2.5, null, "${x}"]});
    /// assert_eq!(to_nix(&Value::from_json(&j)).unwrap(), r#"{ expr = 0; n = [ 1 2.5 null "\${x}" ]; }"#);
    /// ```
    pub fn from_json(json: &serde_json::Value) -> Value {
        use serde_json::Value as J;
        match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(*b),
            // Integers beyond i64 (u64 above i64::MAX) can only be floats in Nix.
            J::Number(n) => n
                .as_i64()
                .map_or_else(|| Value::Float(n.as_f64().unwrap_or(f64::NAN)), Value::Int),
            J::String(s) => Value::Str(s.clone()),
            J::Array(items) => Value::List(items.iter().map(Value::from_json).collect()),
            J::Object(map) => Value::Attrs(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::from_json(v)))
                    .collect(),
            ),
        }
    }
}

/// The serialized form of a [`Value`] (see its docs), borrowed for serializing.
#[derive(Serialize)]
#[serde(rename_all = "lowercase")]
enum WireRef<'a> {
    Null(()),
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
    Path(&'a NixPath),
    List(&'a [Value]),
    Attrs(&'a BTreeMap<String, Value>),
    Expr(&'a Expr),
}

/// The serialized form of a [`Value`], owned for deserializing.
#[derive(Deserialize)]
#[serde(rename_all = "lowercase")]
enum Wire {
    Null(()),
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Path(NixPath),
    List(Vec<Value>),
    Attrs(BTreeMap<String, Value>),
    Expr(Expr),
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Value::Null => WireRef::Null(()),
            Value::Bool(b) => WireRef::Bool(*b),
            Value::Int(i) => WireRef::Int(*i),
            Value::Float(f) => WireRef::Float(*f),
            Value::Str(s) => WireRef::Str(s),
            Value::Path(p) => WireRef::Path(p),
            Value::List(l) => WireRef::List(l),
            Value::Attrs(a) => WireRef::Attrs(a),
            Value::Expr(e) => WireRef::Expr(e),
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        Ok(match Wire::deserialize(deserializer)? {
            Wire::Null(()) => Value::Null,
            Wire::Bool(b) => Value::Bool(b),
            Wire::Int(i) => Value::Int(i),
            Wire::Float(f) => Value::Float(f),
            Wire::Str(s) => Value::Str(s),
            Wire::Path(p) => Value::Path(p),
            Wire::List(l) => Value::List(l),
            Wire::Attrs(a) => Value::Attrs(a),
            Wire::Expr(e) => Value::Expr(e),
        })
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

macro_rules! int_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(i: $t) -> Value {
                Value::Int(i64::from(i))
            }
        }
    )*};
}
int_from!(i8, i16, i32, i64, u8, u16, u32);

impl From<f64> for Value {
    fn from(f: f64) -> Value {
        Value::Float(f)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_owned())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl From<NixPath> for Value {
    fn from(p: NixPath) -> Value {
        Value::Path(p)
    }
}

impl From<Expr> for Value {
    fn from(e: Expr) -> Value {
        Value::Expr(e)
    }
}

impl<V: Into<Value>> From<Vec<V>> for Value {
    fn from(items: Vec<V>) -> Value {
        Value::list(items)
    }
}

impl<V: Into<Value>> From<Option<V>> for Value {
    fn from(o: Option<V>) -> Value {
        o.map_or(Value::Null, Into::into)
    }
}

impl<K: Into<String>, V: Into<Value>> From<BTreeMap<K, V>> for Value {
    fn from(m: BTreeMap<K, V>) -> Value {
        Value::attrs(m)
    }
}

/// Why a piece of Nix could not be built or rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueError {
    /// Not a plain identifier (or a keyword) where one is required.
    BadIdentifier(String),
    /// Not a path literal of the accepted shape.
    BadPath(String),
    /// NaN or infinity, which Nix cannot write.
    NonFiniteFloat(String),
}

impl fmt::Display for ValueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ValueError::BadIdentifier(s) => write!(f, "{s:?} is not a plain Nix identifier"),
            ValueError::BadPath(s) => write!(
                f,
                "{s:?} is not a Nix path literal (./, ../ or /, then segments of [A-Za-z0-9._+-] separated by single /)"
            ),
            ValueError::NonFiniteFloat(s) => write!(f, "the float {s} has no Nix literal"),
        }
    }
}

impl std::error::Error for ValueError {}

/// A plain Nix identifier (not a keyword), checked on construction.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) struct Ident(String);

impl Ident {
    /// Checks that `s` is a plain identifier.
    pub(crate) fn new(s: &str) -> Result<Ident, ValueError> {
        if is_plain_identifier(s) {
            Ok(Ident(s.to_owned()))
        } else {
            Err(ValueError::BadIdentifier(s.to_owned()))
        }
    }

    /// The identifier's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A Nix path literal: `./a/b`, `../a`, or `/nix/store/x`, with segments of
/// `[A-Za-z0-9._+-]` (the characters Nix accepts without quoting), no trailing `/`.
///
/// ```
/// use k8sgen::nix::NixPath;
/// assert!(NixPath::new("./hosts/cp1.nix").is_ok());
/// assert!(NixPath::new("hosts/cp1.nix").is_err()); // Nix needs ./
/// assert!(NixPath::new("./my file.nix").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NixPath(String);

impl NixPath {
    /// Checks that `s` is a path literal of the accepted shape.
    pub fn new(s: &str) -> Result<NixPath, ValueError> {
        let rest = s
            .strip_prefix("./")
            .or_else(|| s.strip_prefix("../"))
            .or_else(|| s.strip_prefix('/'));
        let ok = rest.is_some_and(|rest| {
            rest.split('/').all(|seg| {
                !seg.is_empty()
                    && seg
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '+' | '-'))
            })
        });
        if ok {
            Ok(NixPath(s.to_owned()))
        } else {
            Err(ValueError::BadPath(s.to_owned()))
        }
    }

    /// The path literal's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for NixPath {
    type Error = ValueError;
    fn try_from(s: String) -> Result<NixPath, ValueError> {
        NixPath::new(&s)
    }
}

impl From<NixPath> for String {
    fn from(p: NixPath) -> String {
        p.0
    }
}

/// Nix code that is not data: a variable with optional attribute selection, or a
/// function application. Built only from identifiers (validated), attribute names
/// (escaped when rendered) and [`Value`]s (rendered), so it is injection-free by
/// construction.
///
/// It serializes as a handle (a number) into a table of the expressions this
/// process serialized, and deserializes only from such a handle: an `Expr`
/// reaches a template context only from Rust code, never from data.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr(ExprKind);

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ExprKind {
    /// `root.a."b c"`: a variable and zero or more attribute names.
    Select { root: Ident, path: Vec<String> },
    /// `fun arg1 arg2`
    Apply { fun: Box<Expr>, args: Vec<Value> },
}

impl Expr {
    /// A variable, or a selection spelled in Rust source: `"lib.mkDefault"`,
    /// `"config"`, `"pkgs.hello"`. Only `&'static str` is accepted so runtime
    /// data cannot end up here; use [`Expr::select`] for runtime names.
    ///
    /// # Panics
    /// When `dotted` is not identifiers joined by `.` (a bug in the caller).
    pub fn var(dotted: &'static str) -> Expr {
        match Self::parse_dotted(dotted) {
            Ok(e) => e,
            Err(e) => panic!("Expr::var({dotted:?}): {e}"),
        }
    }

    /// [`Expr::var`] for `root` followed by the runtime attribute names `path`,
    /// each escaped by [`crate::nix::escape::attr_name`] when rendered.
    ///
    /// # Panics
    /// When `root` is not identifiers joined by `.` (a bug in the caller).
    pub fn select<I, S>(root: &'static str, path: I) -> Expr
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let Expr(ExprKind::Select { root, path: mut p }) = Expr::var(root) else {
            unreachable!("Expr::var builds a selection")
        };
        p.extend(path.into_iter().map(Into::into));
        Expr(ExprKind::Select { root, path: p })
    }

    /// Applies this expression to one more argument: `f a` becomes `f a b`.
    pub fn apply(self, arg: Value) -> Expr {
        match self.0 {
            ExprKind::Apply { fun, mut args } => {
                args.push(arg);
                Expr(ExprKind::Apply { fun, args })
            }
            kind => Expr(ExprKind::Apply {
                fun: Box::new(Expr(kind)),
                args: vec![arg],
            }),
        }
    }

    fn parse_dotted(dotted: &str) -> Result<Expr, ValueError> {
        let mut segments = dotted.split('.');
        let root = Ident::new(segments.next().unwrap_or_default())?;
        let path = segments
            .map(|s| Ident::new(s).map(|i| i.0))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| ValueError::BadIdentifier(dotted.to_owned()))?;
        Ok(Expr(ExprKind::Select { root, path }))
    }

    pub(crate) fn kind(&self) -> &ExprKind {
        &self.0
    }
}

/// The expressions serialized by this process; a serialized [`Expr`] is an index.
/// Deduplicated by their debug form, so it grows with distinct expressions only.
#[derive(Default)]
struct ExprTable {
    exprs: Vec<Expr>,
    index: HashMap<String, usize>,
}

fn expr_table() -> std::sync::MutexGuard<'static, ExprTable> {
    static TABLE: OnceLock<Mutex<ExprTable>> = OnceLock::new();
    TABLE
        .get_or_init(Mutex::default)
        .lock()
        // The table is append-only: a panic elsewhere cannot leave it inconsistent.
        .unwrap_or_else(PoisonError::into_inner)
}

impl Serialize for Expr {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let handle = {
            let mut table = expr_table();
            let key = format!("{self:?}");
            match table.index.get(&key) {
                Some(&i) => i,
                None => {
                    let i = table.exprs.len();
                    table.exprs.push(self.clone());
                    table.index.insert(key, i);
                    i
                }
            }
        };
        serializer.serialize_u64(handle as u64)
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Expr, D::Error> {
        let handle = u64::deserialize(deserializer)?;
        let table = expr_table();
        usize::try_from(handle)
            .ok()
            .and_then(|i| table.exprs.get(i))
            .cloned()
            .ok_or_else(|| {
                serde::de::Error::custom(format!(
                    "expression handle {handle} was not made by this process: \
                     Nix expressions are built in Rust (nix::Expr), never read from data"
                ))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_round_trip_and_shape() {
        let e = Value::apply(Expr::var("lib.mkDefault"), Value::from(1));
        let v = Value::attrs([
            ("s", Value::from("x")),
            ("n", Value::Null),
            ("e", e.clone()),
        ]);
        let json = serde_json::to_value(&v).unwrap();
        assert_eq!(json["attrs"]["s"], serde_json::json!({"str": "x"}));
        assert_eq!(json["attrs"]["n"], serde_json::json!({"null": null}));
        assert!(json["attrs"]["e"]["expr"].is_u64());
        // The same expression serializes to the same handle.
        assert_eq!(serde_json::to_value(&e).unwrap(), json["attrs"]["e"]);
        let back: Value = serde_json::from_value(json).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn data_never_deserializes_as_code() {
        use serde_json::json;
        let forged = [
            json!({"expr": {"select": {"root": "builtins", "path": ["readFile"]}}}),
            json!({"expr": "import /etc/passwd"}),
            json!({"expr": u64::MAX}),
            json!({"path": "./a; x = import ./b"}),
            // Plain JSON is not a Value at all (use Value::from_json).
            json!("lib.mkForce"),
            json!("null"),
            json!({"replicas": 3}),
        ];
        for f in forged {
            assert!(serde_json::from_value::<Value>(f.clone()).is_err(), "{f}");
        }
    }

    #[test]
    fn from_json_is_data_only() {
        let j = serde_json::json!({"expr": 0, "big": u64::MAX, "s": "${x}"});
        let v = Value::from_json(&j);
        let Value::Attrs(a) = v else { panic!() };
        assert_eq!(a["expr"], Value::Int(0));
        assert_eq!(a["big"], Value::Float(u64::MAX as f64));
        assert_eq!(a["s"], Value::from("${x}"));
    }

    #[test]
    #[should_panic(expected = "is not a plain Nix identifier")]
    fn var_rejects_non_identifiers() {
        let _ = Expr::var("lib.mkDefault 1");
    }

    #[test]
    fn paths() {
        for ok in ["./a", "../a/b.nix", "/nix/store/abc-x+y_z", "./a/../b"] {
            assert!(NixPath::new(ok).is_ok(), "{ok}");
        }
        for bad in [
            "", ".", "./", "a/b", "./a/", "./a//b", "./a b", "~/a", "./${x}",
        ] {
            assert!(NixPath::new(bad).is_err(), "{bad}");
        }
    }
}
