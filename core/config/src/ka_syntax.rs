//! keepalived.conf syntax: comments, quotes, braces, `include`, and the
//! block tree the keyword readers walk. Mirrors lib/parser.c: `!` and `#`
//! start a comment anywhere outside double quotes (`\#`, `\!` escape them),
//! a trailing `\` continues a line, `{` and `}` are tokens of their own
//! wherever they stand, and relative includes resolve against the directory
//! of the including file (keepalived chdir()s there before globbing).

use std::path::{Path, PathBuf};

use crate::error::Errors;
use crate::model::{Span, Warning};

/// Nested includes deeper than this are taken as a loop.
const MAX_INCLUDE_DEPTH: usize = 16;

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Words(Vec<String>),
    Open,
    Close,
}

#[derive(Debug, Clone)]
struct Line {
    span: Span,
    item: Item,
}

/// A keyword line and, when a `{` follows it, the block it opens.
#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub span: Span,
    pub words: Vec<String>,
    pub block: Option<Vec<Node>>,
}

impl Node {
    pub fn keyword(&self) -> &str {
        self.words.first().map(String::as_str).unwrap_or("")
    }

    pub fn arg(&self, i: usize) -> Option<&str> {
        self.words.get(i).map(String::as_str)
    }
}

pub(crate) struct Reader<'a> {
    pub errors: &'a mut Errors,
    pub warnings: &'a mut Vec<Warning>,
    /// keepalived's config id (`-i`, default the short hostname) that
    /// selects `@ID` lines; `None` selects only `@^ID` ones.
    pub config_id: Option<&'a str>,
}

impl Reader<'_> {
    fn warn(&mut self, span: &Span, msg: String) {
        self.warnings.push(Warning::repaired(span.clone(), msg));
    }

    /// Reads `path` (and what it includes) into a tree.
    pub fn read_file(&mut self, path: &Path) -> Vec<Node> {
        let mut lines = Vec::new();
        let top = Span {
            file: path.to_path_buf(),
            line: 0,
        };
        self.include_file(path, &top, 0, &mut lines);
        self.build(lines)
    }

    pub fn read_str(&mut self, text: &str, name: &Path) -> Vec<Node> {
        let mut lines = Vec::new();
        self.lex(text, name, 0, &mut lines);
        self.build(lines)
    }

    fn include_file(&mut self, path: &Path, from: &Span, depth: usize, out: &mut Vec<Line>) {
        match std::fs::read(path) {
            Ok(bytes) => {
                // keepalived reads bytes; a stray non-UTF-8 byte in a comment must not fail the load.
                let text = String::from_utf8_lossy(&bytes);
                self.lex(&text, path, depth, out);
            }
            Err(e) => self
                .errors
                .push(from, format!("cannot read {}: {e}", path.display())),
        }
    }

    fn lex(&mut self, text: &str, file: &Path, depth: usize, out: &mut Vec<Line>) {
        let mut pending: Option<(usize, String)> = None;
        for (idx, raw) in text.lines().enumerate() {
            let lineno = idx + 1;
            let span = Span {
                file: file.to_path_buf(),
                line: lineno,
            };
            let (clean, cont, unterminated) = decomment(raw);
            if unterminated {
                self.errors
                    .push(&span, "unterminated quote: expected a closing '\"'");
                continue;
            }
            // A trailing backslash joins the next physical line; the span stays on the first.
            let (start, joined) = match pending.take() {
                Some((l, mut acc)) => {
                    acc.push(' ');
                    acc.push_str(&clean);
                    (l, acc)
                }
                None => (lineno, clean),
            };
            if cont {
                pending = Some((start, joined));
                continue;
            }
            let span = Span {
                file: file.to_path_buf(),
                line: start,
            };
            self.lex_logical(&joined, &span, depth, out);
        }
        if let Some((l, acc)) = pending {
            let span = Span {
                file: file.to_path_buf(),
                line: l,
            };
            self.lex_logical(&acc, &span, depth, out);
        }
    }

    fn lex_logical(&mut self, line: &str, span: &Span, depth: usize, out: &mut Vec<Line>) {
        let toks = tokenize(line);
        let Some(first) = toks.first() else { return };
        if !first.quoted {
            let kw = first.text.as_str();
            if matches!(
                kw,
                "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
            ) {
                self.include(&toks[1..], span, depth, out);
                return;
            }
            if let Some(id) = kw.strip_prefix('@') {
                // lib/parser.c: `@ID rest` applies only when ID is this
                // node's config id, `@^ID rest` only when it is not; a line
                // with nothing after the id is dropped.
                let (negate, id) = match id.strip_prefix('^') {
                    Some(rest) => (true, rest),
                    None => (false, id),
                };
                let matches = self.config_id.is_some_and(|c| c == id);
                if matches != negate && toks.len() > 1 {
                    self.lex_tokens(toks.into_iter().skip(1), span, out);
                }
                return;
            }
            if kw.starts_with('$') {
                self.errors.push(
                    span,
                    format!("keepalived parameter substitution / conditional lines ({kw:?}) are not supported by lbd: expand them first"),
                );
                return;
            }
        }
        self.lex_tokens(toks.into_iter(), span, out);
    }

    fn lex_tokens(&mut self, toks: impl Iterator<Item = Token>, span: &Span, out: &mut Vec<Line>) {
        let mut words = Vec::new();
        for t in toks {
            let brace = if t.quoted {
                None
            } else if t.text == "{" {
                Some(Item::Open)
            } else if t.text == "}" {
                Some(Item::Close)
            } else {
                None
            };
            match brace {
                Some(item) => {
                    if !words.is_empty() {
                        out.push(Line {
                            span: span.clone(),
                            item: Item::Words(std::mem::take(&mut words)),
                        });
                    }
                    out.push(Line {
                        span: span.clone(),
                        item,
                    });
                }
                None => words.push(t.text),
            }
        }
        if !words.is_empty() {
            out.push(Line {
                span: span.clone(),
                item: Item::Words(words),
            });
        }
    }

    fn include(&mut self, args: &[Token], span: &Span, depth: usize, out: &mut Vec<Line>) {
        let [pat] = args else {
            self.errors.push(
                span,
                "include: expected exactly one file name or glob pattern",
            );
            return;
        };
        if depth >= MAX_INCLUDE_DEPTH {
            self.errors.push(
                span,
                format!("include nested deeper than {MAX_INCLUDE_DEPTH} levels (include loop?)"),
            );
            return;
        }
        let base = span.file.parent().unwrap_or(Path::new(""));
        let full: PathBuf = if Path::new(&pat.text).is_absolute() {
            PathBuf::from(&pat.text)
        } else {
            base.join(&pat.text)
        };
        let has_glob = pat.text.contains(['*', '?', '[']);
        if !has_glob {
            if full.is_file() {
                self.include_file(&full, span, depth + 1, out);
            } else {
                self.errors
                    .push(span, format!("include: file {} not found", full.display()));
            }
            return;
        }
        let Some(pattern) = full.to_str() else {
            self.errors.push(span, "include: path is not valid UTF-8");
            return;
        };
        let paths = match glob::glob(pattern) {
            Ok(p) => p,
            Err(e) => {
                self.errors.push(
                    span,
                    format!("include: invalid glob pattern {:?}: {e}", pat.text),
                );
                return;
            }
        };
        let mut matched = 0;
        // glob yields paths in alphabetical order, as glob(3) does for keepalived.
        for p in paths {
            match p {
                Ok(p) if p.is_file() => {
                    matched += 1;
                    self.include_file(&p, span, depth + 1, out);
                }
                Ok(p) => self.warn(
                    span,
                    format!("include: {} is not a regular file (skipped)", p.display()),
                ),
                Err(e) => self.errors.push(span, format!("include: {e}")),
            }
        }
        if matched == 0 {
            // keepalived's default include_check does not fail on an empty wildcard match either.
            self.warn(
                span,
                format!("include: pattern {:?} matched no files", pat.text),
            );
        }
    }

    fn build(&mut self, lines: Vec<Line>) -> Vec<Node> {
        let mut it = lines.into_iter().peekable();
        let nodes = self.build_level(&mut it, None);
        // Anything left is a stray '}' at top level.
        for l in it {
            self.errors
                .push(&l.span, "unexpected '}': no block is open");
        }
        nodes
    }

    fn build_level(
        &mut self,
        it: &mut std::iter::Peekable<std::vec::IntoIter<Line>>,
        opener: Option<&Node>,
    ) -> Vec<Node> {
        let mut nodes = Vec::new();
        while let Some(line) = it.next() {
            match line.item {
                Item::Close => {
                    if opener.is_some() {
                        return nodes;
                    }
                    self.errors
                        .push(&line.span, "unexpected '}': no block is open");
                }
                Item::Open => {
                    // A '{' with no keyword before it: read its block so braces stay balanced.
                    self.errors
                        .push(&line.span, "unexpected '{': expected a keyword before it");
                    let anon = Node {
                        span: line.span.clone(),
                        words: vec![],
                        block: None,
                    };
                    self.build_level(it, Some(&anon));
                }
                Item::Words(words) => {
                    let mut node = Node {
                        span: line.span,
                        words,
                        block: None,
                    };
                    if matches!(
                        it.peek(),
                        Some(Line {
                            item: Item::Open,
                            ..
                        })
                    ) {
                        it.next();
                        let children = self.build_level(it, Some(&node));
                        node.block = Some(children);
                    }
                    nodes.push(node);
                }
            }
        }
        if let Some(op) = opener {
            self.errors.push(
                &op.span,
                format!(
                    "block {:?} is never closed: expected '}}'",
                    op.words.join(" ")
                ),
            );
        }
        nodes
    }
}

struct Token {
    text: String,
    quoted: bool,
}

/// Strips comments; returns (text, continues on next line, unterminated quote).
fn decomment(raw: &str) -> (String, bool, bool) {
    let mut out = String::with_capacity(raw.len());
    let mut quote = false;
    let mut chars = raw.chars().peekable();
    let mut cont = false;
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                quote = !quote;
                out.push(c);
            }
            '\\' => match chars.peek() {
                Some(&n) if !quote && (n == '#' || n == '!') => {
                    out.push(n);
                    chars.next();
                }
                Some(&n) => {
                    out.push('\\');
                    out.push(n);
                    chars.next();
                }
                None => cont = true,
            },
            '!' | '#' if !quote => break,
            _ => out.push(c),
        }
    }
    let trimmed = out.trim().to_string();
    (trimmed, cont, quote)
}

/// Splits on blanks and braces; double quotes group (and are removed),
/// `\"` and `\\` inside them stand for `"` and `\`.
fn tokenize(line: &str) -> Vec<Token> {
    let mut toks = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut in_quote = false;
    let flush = |cur: &mut String, quoted: &mut bool, toks: &mut Vec<Token>| {
        if !cur.is_empty() || *quoted {
            toks.push(Token {
                text: std::mem::take(cur),
                quoted: *quoted,
            });
        }
        *quoted = false;
    };
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        if in_quote {
            match c {
                '"' => in_quote = false,
                // keepalived re-reads script strings with escapes
                // (alloc_strvec_quoted_escaped): `"/bin/echo \"a b\" c"`
                // is the command line `/bin/echo "a b" c`.
                '\\' if matches!(chars.peek(), Some('"' | '\\')) => cur.extend(chars.next()),
                c => cur.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                in_quote = true;
                quoted = true;
            }
            '{' | '}' => {
                flush(&mut cur, &mut quoted, &mut toks);
                toks.push(Token {
                    text: c.to_string(),
                    quoted: false,
                });
            }
            c if c.is_whitespace() => flush(&mut cur, &mut quoted, &mut toks),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut quoted, &mut toks);
    toks
}

#[cfg(test)]
#[allow(clippy::expect_used)] // a failed expectation is the test failing
mod tests {
    use super::*;

    fn tree(text: &str) -> (Vec<Node>, Errors) {
        let mut errors = Errors::default();
        let mut warnings = Vec::new();
        let nodes = Reader {
            errors: &mut errors,
            warnings: &mut warnings,
            config_id: Some("high"),
        }
        .read_str(text, Path::new("t.conf"));
        (nodes, errors)
    }

    #[test]
    fn braces_anywhere_and_comments() {
        let (n, e) = tree("a b{ c d # x\n e }\n! full\nf\n{\ng \"h { i\" # j\n}\n");
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(n.len(), 2);
        assert_eq!(n[0].words, ["a", "b"]);
        let b = n[0].block.as_ref().expect("block");
        assert_eq!(b[0].words, ["c", "d"]);
        assert_eq!(b[1].words, ["e"]);
        assert_eq!(b[1].span.line, 2);
        let f = n[1].block.as_ref().expect("block");
        assert_eq!(f[0].words, ["g", "h { i"]);
    }

    #[test]
    fn escapes_and_continuation() {
        let (n, e) = tree("auth_pass ab\\#c!d\nx \\\n y\n");
        assert!(e.is_empty());
        assert_eq!(n[0].words, ["auth_pass", "ab#c"]);
        assert_eq!(n[1].words, ["x", "y"]);
    }

    #[test]
    fn unbalanced() {
        let (_, e) = tree("a {\n b\n");
        assert_eq!(e.0[0].span.line, 1);
        let (_, e) = tree("a\n}\n");
        assert_eq!(e.0[0].span.line, 2);
        let (_, e) = tree("a \"b\n");
        assert!(e.0[0].message.contains("unterminated quote"));
    }
}
