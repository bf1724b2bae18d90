//! The recursive-descent parser of `where` expressions. Precedence, loosest first: `or`,
//! `and`, `not`, then one predicate (a comparison, `in`, `contains`, `is empty`) or a
//! parenthesised expression.

use super::error::SegmentError;
use super::lexer::{tokens, Cmp, Tok, Token, Word};

/// A value in an expression: a column, or a literal.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Value {
    Column(String),
    Str(String),
    Num(f64),
    Date(chrono::NaiveDate),
}

/// A value and where it is written (1-based character).
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Operand {
    pub(super) value: Value,
    pub(super) position: usize,
}

/// A parsed expression; `position` is where its operator is written.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Expr {
    /// Two or more terms (a chain stays flat, so a long one never recurses deeply).
    Or(Vec<Expr>),
    /// Two or more terms.
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        left: Operand,
        op: Cmp,
        right: Operand,
        position: usize,
    },
    In {
        operand: Operand,
        list: Vec<Operand>,
        negated: bool,
        position: usize,
    },
    Contains {
        operand: Operand,
        needle: Operand,
        negated: bool,
        position: usize,
    },
    IsEmpty {
        operand: Operand,
        negated: bool,
        position: usize,
    },
}

/// Parses a whole expression.
pub(super) fn parse(text: &str) -> Result<Expr, SegmentError> {
    let tokens = tokens(text)?;
    let end = text.chars().count() + 1;
    let mut parser = Parser {
        tokens,
        at: 0,
        end,
        depth: 0,
    };
    if parser.tokens.is_empty() {
        return Err(SegmentError::syntax(1, "the expression is empty"));
    }
    let expr = parser.or()?;
    match parser.peek() {
        None => Ok(expr),
        Some(token) => Err(SegmentError::syntax(
            token.position,
            format!(
                "unexpected {} after a complete expression",
                describe(&token.tok)
            ),
        )),
    }
}

struct Parser {
    tokens: Vec<Token>,
    at: usize,
    /// The position just past the last character (for "expected … at the end").
    end: usize,
    /// How many `not`s and parentheses enclose the parser's position.
    depth: usize,
}

/// The deepest nesting of `not` and parentheses accepted (recursion stays bounded).
pub(super) const MAX_DEPTH: usize = 64;

/// A token in words, for messages.
fn describe(tok: &Tok) -> String {
    match tok {
        Tok::Ident(name) => format!("column {name:?}"),
        Tok::Word(word) => format!("{word:?}").to_lowercase(),
        Tok::Str(text) => format!("text {text:?}"),
        Tok::Num(n) => format!("number {n}"),
        Tok::Date(d) => format!("date {d}"),
        Tok::Cmp(op) => op.as_str().to_owned(),
        Tok::LParen => "(".to_owned(),
        Tok::RParen => ")".to_owned(),
        Tok::LBracket => "[".to_owned(),
        Tok::RBracket => "]".to_owned(),
        Tok::Comma => ",".to_owned(),
    }
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn peek_word(&self, word: Word) -> bool {
        self.peek().is_some_and(|t| t.tok == Tok::Word(word))
    }

    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.at).cloned();
        self.at += 1;
        token
    }

    /// The position of the next token, or the end.
    fn here(&self) -> usize {
        self.peek().map_or(self.end, |t| t.position)
    }

    /// An error saying `what` was expected where the next token (or the end) is.
    fn expected(&self, what: &str) -> SegmentError {
        let found = self
            .peek()
            .map_or_else(|| "the end".to_owned(), |t| describe(&t.tok));
        SegmentError::syntax(self.here(), format!("expected {what}, found {found}"))
    }

    fn or(&mut self) -> Result<Expr, SegmentError> {
        let mut terms = vec![self.and()?];
        while self.peek_word(Word::Or) {
            self.at += 1;
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, SegmentError> {
        let mut terms = vec![self.unary()?];
        while self.peek_word(Word::And) {
            self.at += 1;
            terms.push(self.unary()?);
        }
        Ok(if terms.len() == 1 {
            terms.remove(0)
        } else {
            Expr::And(terms)
        })
    }

    /// `not …`, `( … )` or a predicate; more than [`MAX_DEPTH`] levels (each `not`, each
    /// parenthesis and the predicate inside count one) are refused.
    fn unary(&mut self) -> Result<Expr, SegmentError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SegmentError::syntax(
                self.here(),
                format!("nested more than {MAX_DEPTH} deep (not, parentheses)"),
            ));
        }
        let expr = self.unary_inner();
        self.depth -= 1;
        expr
    }

    fn unary_inner(&mut self) -> Result<Expr, SegmentError> {
        if self.peek_word(Word::Not) {
            self.at += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        if self.peek().is_some_and(|t| t.tok == Tok::LParen) {
            let open = self.here();
            self.at += 1;
            let inner = self.or()?;
            if self.peek().is_some_and(|t| t.tok == Tok::RParen) {
                self.at += 1;
                return Ok(inner);
            }
            return Err(self.expected(&format!("the ) closing the ( at character {open}")));
        }
        self.predicate()
    }

    fn operand(&mut self) -> Result<Operand, SegmentError> {
        let position = self.here();
        let value = match self.peek().map(|t| &t.tok) {
            Some(Tok::Ident(name)) => Value::Column(name.clone()),
            Some(Tok::Str(text)) => Value::Str(text.clone()),
            Some(Tok::Num(n)) => Value::Num(*n),
            Some(Tok::Date(d)) => Value::Date(*d),
            _ => return Err(self.expected("a column or a value")),
        };
        self.at += 1;
        Ok(Operand { value, position })
    }

    fn predicate(&mut self) -> Result<Expr, SegmentError> {
        let operand = self.operand()?;
        let position = self.here();
        let negated = self.peek_word(Word::Not);
        if negated {
            self.at += 1;
        }
        match self.next().map(|t| t.tok) {
            Some(Tok::Cmp(op)) if !negated => Ok(Expr::Compare {
                right: self.operand()?,
                left: operand,
                op,
                position,
            }),
            Some(Tok::Word(Word::In)) => Ok(Expr::In {
                list: self.list()?,
                operand,
                negated,
                position,
            }),
            Some(Tok::Word(Word::Contains)) => Ok(Expr::Contains {
                needle: self.operand()?,
                operand,
                negated,
                position,
            }),
            Some(Tok::Word(Word::Is)) if !negated => {
                let negated = self.peek_word(Word::Not);
                if negated {
                    self.at += 1;
                }
                if !self.peek_word(Word::Empty) {
                    return Err(self.expected("empty (as in `is empty` or `is not empty`)"));
                }
                self.at += 1;
                Ok(Expr::IsEmpty {
                    operand,
                    negated,
                    position,
                })
            }
            _ => {
                self.at -= 1;
                Err(self.expected(if negated {
                    "in or contains after not"
                } else {
                    "an operator (== != < <= > >= in contains is)"
                }))
            }
        }
    }

    /// `[value, value, …]` (at least one value, a trailing comma allowed).
    fn list(&mut self) -> Result<Vec<Operand>, SegmentError> {
        if !self.peek().is_some_and(|t| t.tok == Tok::LBracket) {
            return Err(self.expected("a list in [ ]"));
        }
        self.at += 1;
        let mut items = Vec::new();
        loop {
            if self.peek().is_some_and(|t| t.tok == Tok::RBracket) && !items.is_empty() {
                self.at += 1;
                return Ok(items);
            }
            items.push(self.operand()?);
            match self.peek().map(|t| &t.tok) {
                Some(Tok::Comma) => self.at += 1,
                Some(Tok::RBracket) => {}
                _ => return Err(self.expected(", or ]")),
            }
        }
    }
}
