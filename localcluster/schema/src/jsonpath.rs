//! The JSONPath subset kubectl and the apiserver use for printer columns (client-go
//! `util/jsonpath`): `.a.b`, `['a.b']`, `[0]`, `[-1]`, `[1:3]`, `[*]`, `.*`, `..name`,
//! `[?(@.type=="Ready")]` (also `!=`, `<`, `<=`, `>`, `>=`, and `[?(@.x)]` for presence), an
//! optional leading `$`, and the `{...}` wrapped form. Missing keys yield no result rather than
//! an error, as the apiserver's column printer allows.

use serde_json::Value;

/// Why an expression does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unrecognized JSONPath {expr:?}: {reason}")]
pub struct JsonPathError {
    /// The expression.
    pub expr: String,
    /// What is wrong with it.
    pub reason: String,
}

/// A literal on the right of a filter comparison.
#[derive(Debug, Clone, PartialEq)]
enum Literal {
    Str(String),
    Num(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `.name` / `['name']`.
    Field(String),
    /// `..name`: `name` at any depth.
    Recursive(String),
    /// `.*` / `[*]`.
    Wildcard,
    /// `[n]` (negative counts from the end).
    Index(i64),
    /// `[start:end]`.
    Slice(Option<i64>, Option<i64>),
    /// `[?(@.path op literal)]`, or presence when `op` is `None`.
    Filter(Vec<Step>, Option<(Op, Literal)>),
}

/// A parsed JSONPath expression.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonPath {
    steps: Vec<Step>,
}

struct Parser<'a> {
    expr: &'a str,
    s: &'a str,
}

impl Parser<'_> {
    fn err(&self, reason: impl Into<String>) -> JsonPathError {
        JsonPathError {
            expr: self.expr.to_owned(),
            reason: reason.into(),
        }
    }

    /// Steps until the input ends or one of `stop` is the next character.
    fn steps(&mut self, stop: &[char]) -> Result<Vec<Step>, JsonPathError> {
        let mut steps = Vec::new();
        loop {
            self.s = self.s.trim_start();
            match self.s.chars().next() {
                None => return Ok(steps),
                Some(c) if stop.contains(&c) => return Ok(steps),
                Some('.') if self.s.starts_with("..") => {
                    self.s = &self.s[2..];
                    let name = self.name();
                    if name.is_empty() {
                        return Err(self.err("expected a field name after '..'"));
                    }
                    steps.push(Step::Recursive(name));
                }
                Some('.') => {
                    self.s = &self.s[1..];
                    if let Some(rest) = self.s.strip_prefix('*') {
                        self.s = rest;
                        steps.push(Step::Wildcard);
                    } else {
                        let name = self.name();
                        if name.is_empty() && !self.s.starts_with('[') && !self.s.is_empty() {
                            return Err(self.err(format!("unexpected {:?}", self.s)));
                        }
                        if !name.is_empty() {
                            steps.push(Step::Field(name));
                        }
                    }
                }
                Some('[') => steps.push(self.bracket()?),
                Some(_) if steps.is_empty() => {
                    // `metadata.name` without the leading dot.
                    let name = self.name();
                    if name.is_empty() {
                        return Err(self.err(format!("unexpected {:?}", self.s)));
                    }
                    steps.push(Step::Field(name));
                }
                Some(_) => return Err(self.err(format!("unexpected {:?}", self.s))),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut out = String::new();
        let mut chars = self.s.char_indices();
        let mut end = self.s.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, escaped)) = chars.next() {
                        out.push(escaped);
                    }
                }
                '.' | '[' | ']' | ')' | ' ' | '=' | '!' | '<' | '>' | '}' => {
                    end = i;
                    break;
                }
                c => out.push(c),
            }
        }
        self.s = &self.s[end..];
        out
    }

    fn bracket(&mut self) -> Result<Step, JsonPathError> {
        let inner_end = if self.s.starts_with("[?(") {
            self.s.find(")]").map(|i| i + 1)
        } else {
            self.s.find(']')
        }
        .ok_or_else(|| self.err("unclosed '['"))?;
        let inner = self.s[1..inner_end].trim();
        self.s = &self.s[inner_end + 1..];
        if inner == "*" {
            return Ok(Step::Wildcard);
        }
        if let Some(filter) = inner.strip_prefix("?(").and_then(|f| f.strip_suffix(')')) {
            return self.filter(filter.trim());
        }
        if let Some(quoted) = unquote(inner) {
            return Ok(Step::Field(quoted));
        }
        if let Some((a, b)) = inner.split_once(':') {
            let bound = |x: &str| -> Result<Option<i64>, JsonPathError> {
                let x = x.trim();
                if x.is_empty() {
                    Ok(None)
                } else {
                    x.parse()
                        .map(Some)
                        .map_err(|_| self.err(format!("bad slice bound {x:?}")))
                }
            };
            let b = b.split(':').next().unwrap_or("");
            return Ok(Step::Slice(bound(a)?, bound(b)?));
        }
        inner
            .parse()
            .map(Step::Index)
            .map_err(|_| self.err(format!("unsupported subscript [{inner}]")))
    }

    fn filter(&self, f: &str) -> Result<Step, JsonPathError> {
        let Some(rest) = f.strip_prefix('@') else {
            return Err(self.err("a filter must start with @"));
        };
        let mut sub = Parser {
            expr: self.expr,
            s: rest,
        };
        let path = sub.steps(&['=', '!', '<', '>'])?;
        let rest = sub.s.trim();
        if rest.is_empty() {
            return Ok(Step::Filter(path, None));
        }
        let (op, lit) = [
            ("==", Op::Eq),
            ("!=", Op::Ne),
            ("<=", Op::Le),
            (">=", Op::Ge),
            ("<", Op::Lt),
            (">", Op::Gt),
        ]
        .iter()
        .find_map(|(text, op)| rest.strip_prefix(text).map(|lit| (*op, lit.trim())))
        .ok_or_else(|| self.err(format!("unsupported filter operator in {f:?}")))?;
        let literal = if let Some(s) = unquote(lit) {
            Literal::Str(s)
        } else if lit == "true" || lit == "false" {
            Literal::Bool(lit == "true")
        } else {
            Literal::Num(
                lit.parse()
                    .map_err(|_| self.err(format!("unsupported filter literal {lit:?}")))?,
            )
        };
        Ok(Step::Filter(path, Some((op, literal))))
    }
}

fn unquote(s: &str) -> Option<String> {
    let s = s.trim();
    for q in ['\'', '"'] {
        if s.len() >= 2 && s.starts_with(q) && s.ends_with(q) {
            return Some(s[1..s.len() - 1].to_owned());
        }
    }
    None
}

impl JsonPath {
    /// Parses an expression such as `.status.conditions[?(@.type=="Ready")].status` or
    /// `{.metadata.name}`.
    pub fn parse(expr: &str) -> Result<Self, JsonPathError> {
        let mut body = expr.trim();
        if let Some(inner) = body.strip_prefix('{').and_then(|b| b.strip_suffix('}')) {
            body = inner.trim();
        }
        body = body.strip_prefix('$').unwrap_or(body);
        if body.is_empty() {
            return Err(JsonPathError {
                expr: expr.to_owned(),
                reason: "empty expression".to_owned(),
            });
        }
        let mut p = Parser { expr, s: body };
        let steps = p.steps(&[])?;
        Ok(Self { steps })
    }

    /// Every value the expression selects in `root`, in document order.
    pub fn find<'a>(&self, root: &'a Value) -> Vec<&'a Value> {
        eval(&self.steps, vec![root])
    }
}

fn eval<'a>(steps: &[Step], mut current: Vec<&'a Value>) -> Vec<&'a Value> {
    for step in steps {
        let mut next = Vec::new();
        for v in current {
            apply(step, v, &mut next);
        }
        current = next;
    }
    current
}

fn resolve_index(i: i64, len: usize) -> Option<usize> {
    let len_i = i64::try_from(len).ok()?;
    let idx = if i < 0 { len_i + i } else { i };
    usize::try_from(idx).ok().filter(|x| *x < len)
}

fn apply<'a>(step: &Step, v: &'a Value, out: &mut Vec<&'a Value>) {
    match step {
        Step::Field(name) => {
            if let Some(x) = v.as_object().and_then(|m| m.get(name)) {
                out.push(x);
            }
        }
        Step::Recursive(name) => recursive(name, v, out),
        Step::Wildcard => match v {
            Value::Array(a) => out.extend(a.iter()),
            Value::Object(m) => out.extend(m.values()),
            _ => {}
        },
        Step::Index(i) => {
            if let Some(a) = v.as_array()
                && let Some(idx) = resolve_index(*i, a.len())
            {
                out.push(&a[idx]);
            }
        }
        Step::Slice(start, end) => {
            if let Some(a) = v.as_array() {
                let len = i64::try_from(a.len()).unwrap_or(i64::MAX);
                let clamp = |x: i64| {
                    usize::try_from(if x < 0 { (len + x).max(0) } else { x.min(len) }).unwrap_or(0)
                };
                let (s, e) = (clamp(start.unwrap_or(0)), clamp(end.unwrap_or(len)));
                if s < e {
                    out.extend(a[s..e].iter());
                }
            }
        }
        Step::Filter(path, cond) => {
            let Some(items) = v.as_array() else { return };
            for item in items {
                let found = eval(path, vec![item]);
                let keep = match cond {
                    None => !found.is_empty(),
                    Some((op, lit)) => found.first().is_some_and(|x| compare(x, *op, lit)),
                };
                if keep {
                    out.push(item);
                }
            }
        }
    }
}

fn recursive<'a>(name: &str, v: &'a Value, out: &mut Vec<&'a Value>) {
    match v {
        Value::Object(m) => {
            if let Some(x) = m.get(name) {
                out.push(x);
            }
            for child in m.values() {
                recursive(name, child, out);
            }
        }
        Value::Array(a) => {
            for child in a {
                recursive(name, child, out);
            }
        }
        _ => {}
    }
}

fn compare(x: &Value, op: Op, lit: &Literal) -> bool {
    let ord = match (x, lit) {
        (Value::String(a), Literal::Str(b)) => a.as_str().partial_cmp(b.as_str()),
        (Value::Number(a), Literal::Num(b)) => a.as_f64().and_then(|a| a.partial_cmp(b)),
        (Value::Bool(a), Literal::Bool(b)) => {
            return match op {
                Op::Eq => a == b,
                Op::Ne => a != b,
                _ => false,
            };
        }
        _ => return op == Op::Ne,
    };
    let Some(ord) = ord else { return false };
    match op {
        Op::Eq => ord.is_eq(),
        Op::Ne => ord.is_ne(),
        Op::Lt => ord.is_lt(),
        Op::Le => ord.is_le(),
        Op::Gt => ord.is_gt(),
        Op::Ge => ord.is_ge(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn find(expr: &str, v: &Value) -> Vec<Value> {
        JsonPath::parse(expr)
            .expect("parses")
            .find(v)
            .into_iter()
            .cloned()
            .collect()
    }

    fn pod() -> Value {
        json!({
            "metadata": {"name": "p", "labels": {"app.kubernetes.io/name": "x"}},
            "spec": {"containers": [{"name": "a", "ports": [{"containerPort": 80}]}, {"name": "b", "ports": [{"containerPort": 81}]}],
                     "replicas": 3},
            "status": {"conditions": [{"type": "Ready", "status": "True"}, {"type": "Synced", "status": "False"}]}
        })
    }

    #[test]
    fn fields_indices_and_wildcards() {
        let p = pod();
        assert_eq!(find(".metadata.name", &p), [json!("p")]);
        assert_eq!(find("{.metadata.name}", &p), [json!("p")]);
        assert_eq!(find("$.spec.replicas", &p), [json!(3)]);
        assert_eq!(find("metadata.name", &p), [json!("p")]);
        assert_eq!(find(".spec.containers[0].name", &p), [json!("a")]);
        assert_eq!(find(".spec.containers[-1].name", &p), [json!("b")]);
        assert_eq!(
            find(".spec.containers[*].name", &p),
            [json!("a"), json!("b")]
        );
        assert_eq!(find(".spec.containers[0:1].name", &p), [json!("a")]);
        assert_eq!(
            find(".metadata.labels['app.kubernetes.io/name']", &p),
            [json!("x")]
        );
        assert_eq!(
            find(r".metadata.labels.app\.kubernetes\.io/name", &p),
            [json!("x")]
        );
        assert_eq!(find("..containerPort", &p), [json!(80), json!(81)]);
        assert_eq!(find(".metadata.*", &p).len(), 2);
        assert!(find(".spec.missing.deeper", &p).is_empty());
        assert!(find(".spec.containers[5]", &p).is_empty());
    }

    #[test]
    fn filters() {
        let p = pod();
        assert_eq!(
            find(r#".status.conditions[?(@.type=="Ready")].status"#, &p),
            [json!("True")]
        );
        assert_eq!(
            find(".status.conditions[?(@.type == 'Synced')].status", &p),
            [json!("False")]
        );
        assert_eq!(
            find(r#".status.conditions[?(@.type!="Ready")].type"#, &p),
            [json!("Synced")]
        );
        assert_eq!(
            find(
                ".spec.containers[?(@.ports[0].containerPort > 80)].name",
                &p
            ),
            [json!("b")]
        );
        assert_eq!(find(".spec.containers[?(@.ports)].name", &p).len(), 2);
        assert!(find(r#".status.conditions[?(@.type=="Nope")].status"#, &p).is_empty());
    }

    #[test]
    fn bad_expressions_are_errors() {
        for bad in ["", "{}", ".a[", ".a[x]", ".a[?(@.b ~ 1)]", ".a[?(b == 1)]"] {
            assert!(JsonPath::parse(bad).is_err(), "{bad:?} should not parse");
        }
    }
}
