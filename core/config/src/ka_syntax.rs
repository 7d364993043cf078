//! keepalived.conf syntax: comments, quotes, braces, `include`, and the
//! block tree the keyword readers walk. Mirrors lib/parser.c: `!` and `#`
//! start a comment anywhere outside double quotes (`\#`, `\!` escape them),
//! a trailing `\` continues a line, `{` and `}` are tokens of their own
//! wherever they stand, and relative includes resolve against the directory
//! of the including file (keepalived chdir()s there before globbing).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::error::Errors;
use crate::limits::{
    read_regular, too_big, MAX_BLOCK_DEPTH, MAX_CONFIG_BYTES, MAX_FILES, MAX_INCLUDE_DEPTH,
    MAX_WORDS,
};
use crate::model::{Span, Warning};

#[derive(Debug, Clone, PartialEq)]
enum Item {
    Words(Vec<String>),
    Open,
    Close,
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

/// A block still open: its keyword line and the children read so far.
struct Frame {
    node: Node,
    children: Vec<Node>,
    /// A `{` with no keyword: read for balance, then dropped.
    anon: bool,
}

/// Builds the tree as the lexer produces items, with an explicit stack of
/// open blocks: nesting depth costs heap (bounded by MAX_BLOCK_DEPTH), never
/// call stack, and no list of every line is kept beside the tree.
#[derive(Default)]
struct Builder {
    top: Vec<Node>,
    open: Vec<Frame>,
    /// The last keyword line: a `{` right after it opens its block.
    pending: Option<Node>,
}

impl Builder {
    fn level(&mut self) -> &mut Vec<Node> {
        match self.open.last_mut() {
            Some(f) => &mut f.children,
            None => &mut self.top,
        }
    }

    fn flush(&mut self) {
        if let Some(n) = self.pending.take() {
            self.level().push(n);
        }
    }
}

/// One load: the tree and what it has used of the limits.
struct Load {
    tree: Builder,
    bytes_left: u64,
    files: usize,
    words: usize,
    /// A limit was hit: the load has failed, nothing more is read.
    stop: bool,
    /// keepalived's `$NAME=value` definitions, for the lines after them
    /// (across includes, as keepalived keeps them).
    defs: std::collections::HashMap<String, String>,
    /// A definition continued with a trailing `\`: its name and lines so far.
    def_open: Option<(String, String)>,
}

impl Load {
    fn new() -> Load {
        Load {
            tree: Builder::default(),
            bytes_left: MAX_CONFIG_BYTES,
            files: 0,
            words: 0,
            stop: false,
            defs: Default::default(),
            def_open: None,
        }
    }
}

impl Reader<'_> {
    fn warn(&mut self, span: &Span, msg: String) {
        crate::error::push_warning(self.warnings, Warning::repaired(span.clone(), msg));
    }

    /// Reads `path` (and what it includes) into a tree.
    pub fn read_file(&mut self, path: &Path) -> Vec<Node> {
        let mut st = Load::new();
        let top = Span {
            file: Arc::from(path),
            line: 0,
        };
        self.include_file(&mut st, path, &top, 0);
        self.finish(st)
    }

    pub fn read_str(&mut self, text: &str, name: &Path) -> Vec<Node> {
        let mut st = Load::new();
        let file: Arc<Path> = Arc::from(name);
        if text.len() as u64 > st.bytes_left {
            let span = Span { file, line: 0 };
            self.errors
                .push(&span, too_big(name, st.bytes_left, MAX_CONFIG_BYTES));
            return Vec::new();
        }
        st.bytes_left -= text.len() as u64;
        self.lex(&mut st, text, &file, 0);
        self.finish(st)
    }

    /// Counts a file (or glob entry) against MAX_FILES; false once over.
    fn count_file(&mut self, st: &mut Load, from: &Span) -> bool {
        st.files += 1;
        if st.files > MAX_FILES {
            self.errors.push(
                from,
                format!("include: more than {MAX_FILES} files in one configuration"),
            );
            st.stop = true;
        }
        !st.stop
    }

    fn include_file(&mut self, st: &mut Load, path: &Path, from: &Span, depth: usize) {
        if !self.count_file(st, from) {
            return;
        }
        match read_regular(path, st.bytes_left, MAX_CONFIG_BYTES) {
            Ok(bytes) => {
                st.bytes_left -= bytes.len() as u64;
                // keepalived reads bytes; a stray non-UTF-8 byte in a comment must not fail the load.
                let text = String::from_utf8_lossy(&bytes);
                self.lex(st, &text, &Arc::from(path), depth);
            }
            Err(e) => {
                self.errors.push(from, e.msg);
                // Over the size budget: whatever follows cannot fit either.
                st.stop |= e.over_size;
            }
        }
    }

    fn lex(&mut self, st: &mut Load, text: &str, file: &Arc<Path>, depth: usize) {
        let mut pending: Option<(usize, String)> = None;
        for (idx, raw) in text.lines().enumerate() {
            if st.stop {
                return;
            }
            let lineno = idx + 1;
            let (clean, cont, unterminated) = decomment(raw);
            if unterminated {
                let span = Span {
                    file: file.clone(),
                    line: lineno,
                };
                self.errors
                    .push(&span, "unterminated quote: expected a closing '\"'");
                continue;
            }
            // lib/parser.c: `$NAME=value` defines a parameter; a trailing
            // `\` continues it on the next line as a line of its own, so a
            // definition may hold whole blocks.
            if let Some((name, mut value)) = st.def_open.take() {
                value.push('\n');
                value.push_str(&clean);
                if cont {
                    st.def_open = Some((name, value));
                } else {
                    st.defs.insert(name, value);
                }
                continue;
            }
            if pending.is_none() {
                if let Some((name, value)) = definition(&clean) {
                    // Kept as written: keepalived expands at each use, so a
                    // definition may name one made after it.
                    let value = value.to_string();
                    if cont {
                        st.def_open = Some((name, value));
                    } else {
                        st.defs.insert(name, value);
                    }
                    continue;
                }
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
                file: file.clone(),
                line: start,
            };
            self.lex_logical(st, &joined, &span, depth);
        }
        if let Some((l, acc)) = pending {
            let span = Span {
                file: file.clone(),
                line: l,
            };
            self.lex_logical(st, &acc, &span, depth);
        }
    }

    fn lex_logical(&mut self, st: &mut Load, line: &str, span: &Span, depth: usize) {
        if st.stop {
            return;
        }
        if line.contains('$') && !st.defs.is_empty() {
            let expanded = self.substitute(st, line, span, 0);
            if expanded != line {
                // A multi-line definition stands for several lines, each at this one's span.
                for piece in expanded.split('\n') {
                    self.lex_expanded(st, piece.trim(), span, depth);
                }
                return;
            }
        }
        self.lex_expanded(st, line, span, depth);
    }

    /// `$NAME` (followed by a blank, `,`, `)` or the end) and `${NAME}`
    /// replaced by their definitions, themselves expanded (at most
    /// MAX_PARAM_DEPTH deep: a definition naming itself is an error, not a
    /// loop); an undefined name stays as written, as keepalived leaves it.
    /// The growth counts against the size limit, so definitions that double
    /// each other cannot exhaust memory.
    fn substitute(&mut self, st: &mut Load, line: &str, span: &Span, depth: usize) -> String {
        let mut out = String::with_capacity(line.len());
        let mut rest = line;
        while let Some(i) = rest.find('$') {
            out.push_str(&rest[..i]);
            let after = &rest[i + 1..];
            let (name, used, braced) = match after.strip_prefix('{') {
                Some(b) => match b.find('}') {
                    Some(e) => (&b[..e], e + 2, true),
                    None => ("", 0, true),
                },
                None => {
                    let e = after
                        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                        .unwrap_or(after.len());
                    (&after[..e], e, false)
                }
            };
            let ends_ok = braced
                || after[used..]
                    .chars()
                    .next()
                    .is_none_or(|c| matches!(c, ' ' | '\t' | '\n' | ',' | ')'));
            match st
                .defs
                .get(name)
                .filter(|_| !name.is_empty() && ends_ok)
                .cloned()
            {
                Some(_) if depth >= MAX_PARAM_DEPTH => {
                    self.errors.push(
                        span,
                        format!("parameter ${name}: definitions nested deeper than {MAX_PARAM_DEPTH} (does it name itself?)"),
                    );
                    st.stop = true;
                    return out;
                }
                Some(v) => {
                    let v = self.substitute(st, &v, span, depth + 1);
                    if st.stop {
                        return out;
                    }
                    let grow = v.len() as u64;
                    if grow > st.bytes_left {
                        self.errors.push(
                            span,
                            format!("parameter ${name}: substitutions exceed the configuration size limit of {} MiB", MAX_CONFIG_BYTES >> 20),
                        );
                        st.stop = true;
                        return out;
                    }
                    st.bytes_left -= grow;
                    out.push_str(&v);
                    rest = &after[used..];
                }
                None => {
                    out.push('$');
                    rest = after;
                }
            }
        }
        out.push_str(rest);
        out
    }

    fn lex_expanded(&mut self, st: &mut Load, line: &str, span: &Span, depth: usize) {
        let toks = tokenize(line, MAX_WORDS - st.words + 1);
        st.words += toks.len();
        if st.words > MAX_WORDS {
            self.errors.push(
                span,
                format!("more than {MAX_WORDS} words in the configuration (the limit): not read further"),
            );
            st.stop = true;
            return;
        }
        let Some(first) = toks.first() else { return };
        if !first.quoted {
            let kw = first.text.as_str();
            if matches!(
                kw,
                "include" | "includer" | "includem" | "includew" | "includeb" | "includea"
            ) {
                self.include(st, &toks[1..], span, depth);
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
                    self.lex_tokens(st, toks.into_iter().skip(1), span);
                }
                return;
            }
            if kw.starts_with("~SEQ") || kw.starts_with("~LST") {
                self.errors.push(
                    span,
                    format!("keepalived's {kw:?} line generators are not supported by lbd: expand them first"),
                );
                return;
            }
        }
        self.lex_tokens(st, toks.into_iter(), span);
    }

    fn lex_tokens(&mut self, st: &mut Load, toks: impl Iterator<Item = Token>, span: &Span) {
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
                        self.item(st, span, Item::Words(std::mem::take(&mut words)));
                    }
                    self.item(st, span, item);
                }
                None => words.push(t.text),
            }
        }
        if !words.is_empty() {
            self.item(st, span, Item::Words(words));
        }
    }

    /// One lexed item into the tree.
    fn item(&mut self, st: &mut Load, span: &Span, item: Item) {
        if st.stop {
            return;
        }
        let t = &mut st.tree;
        match item {
            Item::Words(words) => {
                t.flush();
                t.pending = Some(Node {
                    span: span.clone(),
                    words,
                    block: None,
                });
            }
            Item::Open => {
                if t.open.len() >= MAX_BLOCK_DEPTH {
                    self.errors.push(
                        span,
                        format!("blocks nested deeper than {MAX_BLOCK_DEPTH} levels (the limit): not read further"),
                    );
                    st.stop = true;
                    return;
                }
                let frame = match t.pending.take() {
                    Some(node) => Frame {
                        node,
                        children: Vec::new(),
                        anon: false,
                    },
                    None => {
                        // A '{' with no keyword before it: read its block so braces stay balanced.
                        self.errors
                            .push(span, "unexpected '{': expected a keyword before it");
                        Frame {
                            node: Node {
                                span: span.clone(),
                                words: vec![],
                                block: None,
                            },
                            children: Vec::new(),
                            anon: true,
                        }
                    }
                };
                t.open.push(frame);
            }
            Item::Close => {
                t.flush();
                match t.open.pop() {
                    Some(f) if f.anon => {}
                    Some(Frame {
                        mut node,
                        mut children,
                        ..
                    }) => {
                        children.shrink_to_fit();
                        node.block = Some(children);
                        t.level().push(node);
                    }
                    // lib/parser.c: "Extra '}' found", and reading goes on.
                    None => self.warn(
                        span,
                        "unexpected '}': no block is open (ignored, as keepalived does)".into(),
                    ),
                }
            }
        }
    }

    /// The finished tree. keepalived closes blocks still open at the end
    /// ("There are N missing '}'s") and uses what it read: so does lbd,
    /// with a warning per block (innermost first).
    fn finish(&mut self, mut st: Load) -> Vec<Node> {
        if st.stop {
            return Vec::new();
        }
        st.tree.flush();
        while let Some(f) = st.tree.open.pop() {
            self.warn(
                &f.node.span,
                format!(
                    "block {:?} is never closed (missing '}}'): closed at the end of the file, as keepalived does",
                    f.node.words.join(" ")
                ),
            );
            if !f.anon {
                let mut node = f.node;
                node.block = Some(f.children);
                st.tree.level().push(node);
            }
        }
        st.tree.top
    }

    fn include(&mut self, st: &mut Load, args: &[Token], span: &Span, depth: usize) {
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
            if full.exists() {
                // A FIFO, directory or device named here is refused by the read.
                self.include_file(st, &full, span, depth + 1);
            } else {
                // keepalived: "Config files missing", and it runs without them.
                self.warn(
                    span,
                    format!(
                        "include: file {} not found; read without it, as keepalived does",
                        full.display()
                    ),
                );
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
            if st.stop {
                return;
            }
            match p {
                Ok(p) if p.is_file() => {
                    matched += 1;
                    self.include_file(st, &p, span, depth + 1);
                }
                // keepalived skips what a pattern matches that is not a regular file.
                Ok(p) => {
                    if self.count_file(st, span) {
                        self.warn(
                            span,
                            format!("include: {} is not a regular file (skipped)", p.display()),
                        );
                    }
                }
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
}

struct Token {
    text: String,
    quoted: bool,
}

/// Parameter definitions naming others, at most this deep.
const MAX_PARAM_DEPTH: usize = 16;

/// `$NAME=value` (NAME of letters, digits and `_`): a parameter definition.
fn definition(line: &str) -> Option<(String, &str)> {
    let body = line.trim_start().strip_prefix('$')?;
    let (name, value) = body.split_once('=')?;
    let valid = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    valid.then(|| (name.to_string(), value.trim()))
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
/// `\"` and `\\` inside them stand for `"` and `\`. Stops after `max`
/// tokens: the caller refuses the line then.
fn tokenize(line: &str, max: usize) -> Vec<Token> {
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
        if toks.len() > max {
            return toks;
        }
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
        // keepalived repairs both brace mistakes: warnings, and the tree is used.
        let mut errors = Errors::default();
        let mut warnings = Vec::new();
        let n = Reader {
            errors: &mut errors,
            warnings: &mut warnings,
            config_id: None,
        }
        .read_str("a {\n b\n", Path::new("t.conf"));
        assert!(errors.is_empty());
        assert_eq!(n[0].block.as_ref().map(Vec::len), Some(1));
        assert_eq!(warnings[0].span.line, 1);
        let mut warnings = Vec::new();
        let _ = Reader {
            errors: &mut errors,
            warnings: &mut warnings,
            config_id: None,
        }
        .read_str("a\n}\n", Path::new("t.conf"));
        assert!(errors.is_empty());
        assert_eq!(warnings[0].span.line, 2);
        let (_, e) = tree("a \"b\n");
        assert!(e.0[0].message.contains("unterminated quote"));
    }
}
