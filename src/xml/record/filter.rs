//! Predicates on records: [`Where`] conditions (`copipe records --where`)
//! and the stages [`filter_where`] and [`field_matches`].

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use super::output::FieldTally;
use super::Record;
use crate::error::{Error, Result};
use crate::stage::{Flow, Stage};
use crate::Lifecycle;

/// One condition on a field of a record, as `copipe records --where`
/// takes it: `FIELD=VALUE`, `FIELD!=VALUE`, `FIELD~REGEX`, or a numeric
/// `FIELD<N`, `FIELD<=N`, `FIELD>N`, `FIELD>=N`.
///
/// The field name ends at the first of `=!~<>`. A record without the
/// field fails every condition except `!=` (as Python's
/// `d.get(field) != value`). A numeric comparison parses the value as a
/// decimal number (surrounding whitespace allowed); a value that is not
/// one fails, and [`check`](Where::check) says so, so that it can be
/// counted.
///
/// # Examples
///
/// ```
/// use copipe::xml::{Check, Record, Where};
///
/// let bus = Record::from_iter([("rt", "22"), ("lat", "41.9"), ("des", "Howard")]);
/// let near: Where = "lat>=41.5".parse()?;
/// assert_eq!(near.check(&bus), Check::Pass);
/// assert_eq!("des~^How".parse::<Where>()?.check(&bus), Check::Pass);
/// assert_eq!("rt!=22".parse::<Where>()?.check(&bus), Check::Fail);
/// assert_eq!("des<3".parse::<Where>()?.check(&bus), Check::NotANumber);
/// assert_eq!(near.to_string(), "lat>=41.5");
/// # Ok::<(), copipe::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Where {
    text: String,
    field: String,
    value: String,
    test: Test,
}

#[derive(Debug, Clone)]
enum Test {
    Eq,
    Ne,
    Match(regex::Regex),
    Num(Cmp, f64),
}

#[derive(Debug, Clone, Copy)]
enum Cmp {
    Lt,
    Le,
    Gt,
    Ge,
}

/// The outcome of a [`Where`] on one record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Check {
    /// The record meets the condition.
    Pass,
    /// It does not (or lacks the field).
    Fail,
    /// A numeric comparison met a value that is not a number: it fails.
    NotANumber,
}

impl Where {
    /// The field the condition tests.
    pub fn field(&self) -> &str {
        &self.field
    }

    /// Tests `record`.
    #[inline]
    pub fn check(&self, record: &Record) -> Check {
        self.check_value(record.get(&self.field))
    }

    /// Tests the value of the field (None: the record lacks it), as
    /// [`check`](Where::check) does on a record.
    ///
    /// # Examples
    ///
    /// ```
    /// use copipe::xml::{Check, Where};
    ///
    /// let w: Where = "rt!=22".parse()?;
    /// assert_eq!(w.check_value(Some("22")), Check::Fail);
    /// assert_eq!(w.check_value(None), Check::Pass);
    /// # Ok::<(), copipe::Error>(())
    /// ```
    #[inline]
    pub fn check_value(&self, value: Option<&str>) -> Check {
        let pass = match (&self.test, value) {
            (Test::Ne, None) => true,
            (_, None) => false,
            (Test::Eq, Some(v)) => v == self.value,
            (Test::Ne, Some(v)) => v != self.value,
            (Test::Match(re), Some(v)) => re.is_match(v),
            (Test::Num(cmp, n), Some(v)) => match number(v) {
                Some(x) => match cmp {
                    Cmp::Lt => x < *n,
                    Cmp::Le => x <= *n,
                    Cmp::Gt => x > *n,
                    Cmp::Ge => x >= *n,
                },
                None => return Check::NotANumber,
            },
        };
        if pass {
            Check::Pass
        } else {
            Check::Fail
        }
    }

    /// True for a numeric comparison (`<`, `<=`, `>`, `>=`), the only kind
    /// that can answer [`Check::NotANumber`].
    pub fn is_numeric(&self) -> bool {
        matches!(self.test, Test::Num(..))
    }
}

/// Makes the test of an operator from the value (None: not a number).
type MakeTest = fn(&str) -> Option<Test>;

/// A decimal number (no NaN, no infinity), surrounding whitespace allowed.
fn number(s: &str) -> Option<f64> {
    let s = s.trim();
    // `f64::from_str` also takes `inf` and `NaN`: not what a feed means.
    if !s
        .bytes()
        .all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b))
    {
        return None;
    }
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

impl FromStr for Where {
    type Err = Error;

    /// Parses `FIELD OP VALUE`.
    ///
    /// # Errors
    ///
    /// No operator, an empty field, a bad regular expression, or a numeric
    /// comparison with something other than a number.
    fn from_str(s: &str) -> Result<Where> {
        let bad = |why: &str| {
            Error::usage(format!(
                "bad condition `{s}`: {why} (expected FIELD=VALUE, FIELD!=VALUE, FIELD~REGEX, \
                 FIELD<N, FIELD<=N, FIELD>N or FIELD>=N)"
            ))
        };
        let at = s
            .find(['=', '!', '~', '<', '>'])
            .ok_or_else(|| bad("no operator"))?;
        let (field, rest) = s.split_at(at);
        if field.is_empty() {
            return Err(bad("no field name"));
        }
        let ops: [(&str, MakeTest); 7] = [
            ("!=", |_| Some(Test::Ne)),
            ("<=", |v| number(v).map(|n| Test::Num(Cmp::Le, n))),
            (">=", |v| number(v).map(|n| Test::Num(Cmp::Ge, n))),
            ("=", |_| Some(Test::Eq)),
            ("<", |v| number(v).map(|n| Test::Num(Cmp::Lt, n))),
            (">", |v| number(v).map(|n| Test::Num(Cmp::Gt, n))),
            ("~", |_| None),
        ];
        let (op, make) = ops
            .iter()
            .find(|(op, _)| rest.starts_with(op))
            .ok_or_else(|| bad("no operator"))?;
        let value = &rest[op.len()..];
        let test = if *op == "~" {
            Test::Match(
                regex::Regex::new(value)
                    .map_err(|e| bad(&format!("bad regular expression: {e}")))?,
            )
        } else {
            make(value).ok_or_else(|| bad(&format!("`{value}` is not a number")))?
        };
        Ok(Where {
            text: s.to_string(),
            field: field.to_string(),
            value: value.to_string(),
            test,
        })
    }
}

impl fmt::Display for Where {
    /// The condition as it was written.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Passes on the records that meet a [`Where`]. Made by [`filter_where`].
#[derive(Debug)]
pub struct FilterWhere<S> {
    cond: Where,
    not_numbers: u64,
    tally: Option<Arc<Mutex<FieldTally>>>,
    target: S,
}

/// Passes on the records that meet `cond`, counting the values a numeric
/// comparison found not to be numbers (they fail).
///
/// # Examples
///
/// ```
/// use copipe::xml::{filter_where, Record};
/// use copipe::{Stage, StageExt, sinks::Collect};
///
/// let mut out = Collect::new();
/// let mut late = filter_where("dly>0".parse()?, (&mut out).owned());
/// late.send(&Record::from_iter([("dly", "3")]))?;
/// late.send(&Record::from_iter([("dly", "0")]))?;
/// late.send(&Record::from_iter([("dly", "false")]))?;
/// assert_eq!(late.not_numbers(), 1);
/// drop(late);
/// assert_eq!(out.items().len(), 1);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn filter_where<S>(cond: Where, target: S) -> FilterWhere<S> {
    FilterWhere {
        cond,
        not_numbers: 0,
        tally: None,
        target,
    }
}

impl<S> FilterWhere<S> {
    /// Values a numeric comparison found not to be numbers, so far.
    pub fn not_numbers(&self) -> u64 {
        self.not_numbers
    }

    /// At `close`, adds the count of values that were not numbers to
    /// `tally` (which the caller reports once, for all stages).
    pub fn count_into(mut self, tally: Arc<Mutex<FieldTally>>) -> FilterWhere<S> {
        self.tally = Some(tally);
        self
    }
}

impl<'r, S: Stage<&'r Record>> Stage<&'r Record> for FilterWhere<S> {
    #[inline]
    fn send(&mut self, record: &'r Record) -> Result<Flow> {
        match self.cond.check(record) {
            Check::Pass => self.target.send(record),
            Check::Fail => Ok(Flow::Continue),
            Check::NotANumber => {
                self.not_numbers += 1;
                Ok(Flow::Continue)
            }
        }
    }
}

impl<S: Lifecycle> Lifecycle for FilterWhere<S> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        if let Some(t) = self.tally.take() {
            t.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .add_not_numbers(self.cond.field(), self.not_numbers);
        }
        self.target.close()
    }
}

/// Passes on the records whose field `name` is present and meets `pred`.
/// Made by [`field_matches`].
#[derive(Debug, Clone)]
pub struct FieldMatches<S, F> {
    name: String,
    pred: F,
    target: S,
}

/// Passes on the records whose field `name` is present and for whose value
/// `pred` is true: the library's form of any `--where`.
///
/// # Examples
///
/// ```
/// use copipe::xml::{field_matches, Record};
/// use copipe::{Stage, StageExt, sinks::Collect};
///
/// let mut out = Collect::new();
/// let mut north = field_matches("latitude", |v| v.parse::<f64>().is_ok_and(|x| x > 41.9),
///     (&mut out).owned());
/// north.send(&Record::from_iter([("latitude", "41.95")]))?;
/// north.send(&Record::from_iter([("latitude", "41.80")]))?;
/// north.send(&Record::from_iter([("id", "7")]))?;
/// assert_eq!(out.items().len(), 1);
/// # Ok::<(), copipe::Error>(())
/// ```
pub fn field_matches<S, F>(name: &str, pred: F, target: S) -> FieldMatches<S, F>
where
    F: FnMut(&str) -> bool,
{
    FieldMatches {
        name: name.to_string(),
        pred,
        target,
    }
}

impl<'r, S, F> Stage<&'r Record> for FieldMatches<S, F>
where
    S: Stage<&'r Record>,
    F: FnMut(&str) -> bool,
{
    #[inline]
    fn send(&mut self, record: &'r Record) -> Result<Flow> {
        match record.get(&self.name) {
            Some(v) if (self.pred)(v) => self.target.send(record),
            _ => Ok(Flow::Continue),
        }
    }
}

impl<S: Lifecycle, F> Lifecycle for FieldMatches<S, F> {
    fn flush(&mut self) -> Result<()> {
        self.target.flush()
    }
    fn close(&mut self) -> Result<()> {
        self.target.close()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_form_parses_and_tests() {
        let r = Record::from_iter([("a", "10"), ("s", "North Bound"), ("x", "n/a")]);
        let cases = [
            ("a=10", Check::Pass),
            ("a=1", Check::Fail),
            ("a!=1", Check::Pass),
            ("missing!=1", Check::Pass),
            ("missing=1", Check::Fail),
            ("s~^North", Check::Pass),
            ("s~South", Check::Fail),
            ("a<10", Check::Fail),
            ("a<=10", Check::Pass),
            ("a>9.5", Check::Pass),
            ("a>=10.5", Check::Fail),
            ("x>1", Check::NotANumber),
            ("missing>1", Check::Fail),
            ("a==10", Check::Fail),
        ];
        for (cond, want) in cases {
            let w: Where = cond.parse().unwrap();
            assert_eq!(w.check(&r), want, "{cond}");
            assert_eq!(w.to_string(), cond);
        }
        for bad in ["a", "=1", "a<x", "a~(", "a>nan"] {
            assert!(bad.parse::<Where>().is_err(), "{bad}");
        }
    }
}
