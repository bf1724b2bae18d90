//! Binding a parsed expression to the list's columns (unknown columns and type errors are
//! found here, before any row is read) and evaluating it on a row.

use std::cmp::Ordering;

use chrono::NaiveDate;

use super::error::SegmentError;
use super::lexer::{cell_date, cell_number, Cmp};
use super::parser::{Expr, Operand, Value};

/// A side of a comparison once bound: a cell (by column index) or a literal (texts kept
/// lowercased: texts compare without case).
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Side {
    Cell(usize),
    Str(String),
    Num(f64),
    Date(NaiveDate),
}

/// An expression bound to one list's columns, ready to evaluate.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Bound {
    Or(Vec<Bound>),
    And(Vec<Bound>),
    Not(Box<Bound>),
    Compare(Side, Cmp, Side),
    In(Side, Vec<Side>, bool),
    Contains(Side, Side, bool),
    IsEmpty(usize, bool),
}

/// The kind of a literal, for type errors.
fn kind(side: &Side) -> Option<&'static str> {
    match side {
        Side::Cell(_) => None,
        Side::Str(_) => Some("a text"),
        Side::Num(_) => Some("a number"),
        Side::Date(_) => Some("a date"),
    }
}

/// Binds `expr` to `columns`.
pub(super) fn bind(expr: &Expr, columns: &[String]) -> Result<Bound, SegmentError> {
    let side = |operand: &Operand| side(operand, columns);
    Ok(match expr {
        Expr::Or(terms) => Bound::Or(bind_all(terms, columns)?),
        Expr::And(terms) => Bound::And(bind_all(terms, columns)?),
        Expr::Not(a) => Bound::Not(Box::new(bind(a, columns)?)),
        Expr::Compare {
            left,
            op,
            right,
            position,
        } => {
            let (l, r) = (side(left)?, side(right)?);
            same_kind(&l, &r, *position, || {
                format!("cannot compare {} with {}", describe(left), describe(right))
            })?;
            Bound::Compare(l, *op, r)
        }
        Expr::In {
            operand,
            list,
            negated,
            ..
        } => Bound::In(side(operand)?, bind_list(operand, list, columns)?, *negated),
        Expr::Contains {
            operand,
            needle,
            negated,
            ..
        } => {
            let (hay, pin) = (side(operand)?, side(needle)?);
            for (operand, bound) in [(operand, &hay), (needle, &pin)] {
                if matches!(bound, Side::Num(_) | Side::Date(_)) {
                    return Err(type_error(
                        operand,
                        &format!("contains works on texts, not on {}", describe(operand)),
                    ));
                }
            }
            Bound::Contains(hay, pin, *negated)
        }
        Expr::IsEmpty {
            operand, negated, ..
        } => match side(operand)? {
            Side::Cell(index) => Bound::IsEmpty(index, *negated),
            _ => {
                return Err(type_error(
                    operand,
                    "is empty applies to a column, not to a value",
                ))
            }
        },
    })
}

fn bind_all(terms: &[Expr], columns: &[String]) -> Result<Vec<Bound>, SegmentError> {
    terms.iter().map(|term| bind(term, columns)).collect()
}

/// The values of `operand in [list]`: literals, all of one kind, and of the operand's kind
/// when it is a literal too.
fn bind_list(
    operand: &Operand,
    list: &[Operand],
    columns: &[String],
) -> Result<Vec<Side>, SegmentError> {
    let subject = side(operand, columns)?;
    let mut items: Vec<Side> = Vec::with_capacity(list.len());
    for item in list {
        let bound = side(item, columns)?;
        if matches!(bound, Side::Cell(_)) {
            return Err(type_error(item, "a list holds values, not columns"));
        }
        match items.first() {
            Some(first) => same_kind(first, &bound, item.position, || {
                format!("{} in a list of {}s", describe(item), kind_name(first))
            })?,
            None => same_kind(&subject, &bound, item.position, || {
                format!(
                    "cannot look for {} in a list of {}s",
                    describe(operand),
                    kind_name(&bound)
                )
            })?,
        }
        items.push(bound);
    }
    Ok(items)
}

/// `a text`, `a number`, `a date` of a literal side.
fn kind_name(side: &Side) -> &'static str {
    match side {
        Side::Num(_) => "number",
        Side::Date(_) => "date",
        _ => "text",
    }
}

/// An operand in words: `column "age"`, `the text "x"`, `the number 3`, `the date …`.
fn describe(operand: &Operand) -> String {
    match &operand.value {
        Value::Column(name) => format!("column {name:?}"),
        Value::Str(text) => format!("the text {text:?}"),
        Value::Num(n) => format!("the number {n}"),
        Value::Date(d) => format!("the date {d}"),
    }
}

fn type_error(operand: &Operand, detail: &str) -> SegmentError {
    SegmentError::Type {
        position: operand.position,
        column: match &operand.value {
            Value::Column(name) => Some(name.clone()),
            _ => None,
        },
        detail: detail.to_owned(),
    }
}

/// Two literals must be of one kind; a cell goes with anything.
fn same_kind(
    a: &Side,
    b: &Side,
    position: usize,
    detail: impl FnOnce() -> String,
) -> Result<(), SegmentError> {
    match (kind(a), kind(b)) {
        (Some(x), Some(y)) if x != y => Err(SegmentError::Type {
            position,
            column: None,
            detail: detail(),
        }),
        _ => Ok(()),
    }
}

fn side(operand: &Operand, columns: &[String]) -> Result<Side, SegmentError> {
    Ok(match &operand.value {
        Value::Column(name) => match columns.iter().position(|c| c == name) {
            Some(index) => Side::Cell(index),
            None => {
                return Err(SegmentError::UnknownColumn {
                    position: operand.position,
                    column: name.clone(),
                    suggestion: columns
                        .iter()
                        .find(|c| c.eq_ignore_ascii_case(name))
                        .cloned(),
                    known: columns.to_vec(),
                })
            }
        },
        Value::Str(text) => Side::Str(text.to_lowercase()),
        Value::Num(n) => Side::Num(*n),
        Value::Date(d) => Side::Date(*d),
    })
}

impl Bound {
    /// Whether the row with `values` (aligned with the bound columns) matches.
    pub(super) fn matches(&self, values: &[String]) -> bool {
        match self {
            Self::Or(terms) => terms.iter().any(|t| t.matches(values)),
            Self::And(terms) => terms.iter().all(|t| t.matches(values)),
            Self::Not(a) => !a.matches(values),
            Self::Compare(l, op, r) => order(l, r, values).is_some_and(|o| holds(*op, o)),
            Self::In(subject, items, negated) => {
                let found = items
                    .iter()
                    .any(|item| order(subject, item, values) == Some(Ordering::Equal));
                found != *negated
            }
            Self::Contains(hay, pin, negated) => {
                let hay = text(hay, values);
                let pin = text(pin, values);
                hay.contains(pin.as_str()) != *negated
            }
            Self::IsEmpty(index, negated) => cell(values, *index).is_empty() != *negated,
        }
    }
}

fn cell(values: &[String], index: usize) -> &str {
    values.get(index).map_or("", String::as_str)
}

/// A text side, lowercased (cells are lowered here, literals when bound).
fn text(side: &Side, values: &[String]) -> String {
    match side {
        Side::Cell(index) => cell(values, *index).to_lowercase(),
        Side::Str(text) => text.clone(),
        Side::Num(n) => n.to_string(),
        Side::Date(d) => d.to_string(),
    }
}

fn holds(op: Cmp, ordering: Ordering) -> bool {
    match op {
        Cmp::Eq => ordering == Ordering::Equal,
        Cmp::Ne => ordering != Ordering::Equal,
        Cmp::Lt => ordering == Ordering::Less,
        Cmp::Le => ordering != Ordering::Greater,
        Cmp::Gt => ordering == Ordering::Greater,
        Cmp::Ge => ordering != Ordering::Less,
    }
}

/// How `a` compares with `b` on this row; `None` when a cell does not read as the number
/// or date it is compared with (the comparison is then false, whatever the operator).
fn order(a: &Side, b: &Side, values: &[String]) -> Option<Ordering> {
    match (a, b) {
        (Side::Cell(i), Side::Cell(j)) => {
            let (x, y) = (cell(values, *i), cell(values, *j));
            if let (Some(x), Some(y)) = (cell_date(x), cell_date(y)) {
                return Some(x.cmp(&y));
            }
            if let (Some(x), Some(y)) = (cell_number(x), cell_number(y)) {
                return x.partial_cmp(&y);
            }
            Some(x.to_lowercase().cmp(&y.to_lowercase()))
        }
        (Side::Cell(i), literal) => literal_order(cell(values, *i), literal),
        (literal, Side::Cell(j)) => literal_order(cell(values, *j), literal).map(Ordering::reverse),
        (Side::Str(x), Side::Str(y)) => Some(x.cmp(y)),
        (Side::Num(x), Side::Num(y)) => x.partial_cmp(y),
        (Side::Date(x), Side::Date(y)) => Some(x.cmp(y)),
        _ => None,
    }
}

/// How a cell compares with a literal, read as the literal's kind.
fn literal_order(cell: &str, literal: &Side) -> Option<Ordering> {
    match literal {
        Side::Str(text) => Some(cell.to_lowercase().as_str().cmp(text.as_str())),
        Side::Num(n) => cell_number(cell)?.partial_cmp(n),
        Side::Date(d) => Some(cell_date(cell)?.cmp(d)),
        Side::Cell(_) => None,
    }
}
