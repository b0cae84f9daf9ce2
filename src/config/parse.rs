//! The vcl.conf grammar.
//!
//! What upstream (VPP v26.06 `vppcom_cfg_read_file` + vppinfra unformat) does,
//! and what we keep:
//! * Only the first `vcl { ... }` block counts; text outside it is ignored and
//!   parsing stops at its `}`. We keep that, but warn about the ignored text.
//! * `#` starts a comment to the end of the line, wherever it appears
//!   (upstream: a line whose first word starts with `#`, or anything after a
//!   keyword's value, which covers `100#x` too). C-style `/* */` comments are NOT
//!   comments upstream (unformat has none), so they are not here either.
//! * `heapsize` is pre-scanned in the whole file, inside or outside the block;
//!   the last one wins.
//! * Keywords match whole words, values are decimal unless noted, sizes may be
//!   `0x` hex for segment-size, add-segment-size, rx/tx-fifo-size and
//!   event-queue-size only, exactly as upstream.
//!
//! Where we deliberately differ:
//! * Upstream reads one keyword per line and drops the rest of the line, and
//!   needs `vcl {` on one line. We read a token stream, so several keywords per
//!   line (the whole block on one line) and `{` on its own line both work.
//!   Stray words after a value therefore surface as unknown-option warnings.
//! * A missing or malformed value is an error naming file, line and token;
//!   upstream logs "unknown option" (or, for heapsize, silently keeps the
//!   default) and carries on with a config the user did not ask for.
//! * Out-of-range numbers are errors instead of being truncated.
//! * heapsize takes k/m/g suffixes or none everywhere (upstream's pre-scan only
//!   takes m/g and its u32 arithmetic overflows at 4G).
//! * `segment-baseva` (removed upstream long ago, still listed in old docs) is
//!   accepted, hex or decimal, and stored; it has no effect on the wire.
//! * namespace-id is kept whole; upstream's bapi build truncates it to the
//!   attach message's limit, which is the bapi layer's business.

use super::{parse_sapi_addr, Config, ConfigError, Parsed};

/// How a keyword's value is read.
#[derive(Clone, Copy, PartialEq)]
enum Val {
    /// No value: the keyword alone sets a flag.
    Flag,
    /// Decimal only.
    Dec,
    /// Decimal or `0x` hex.
    DecHex,
    /// Seconds, a decimal float.
    Float,
    /// Memory size with an optional k/m/g suffix.
    Mem,
    /// One word, kept as is.
    Word,
    /// A socket address (see `sapi.rs`).
    Sapi,
}

/// Every keyword VPP v26.06 accepts (bapi build, the default) plus segment-baseva.
const KEYWORDS: &[(&str, Val)] = &[
    ("heapsize", Val::Mem),
    ("max-workers", Val::Dec),
    ("app-socket-api", Val::Sapi),
    ("segment-baseva", Val::DecHex),
    ("segment-size", Val::DecHex),
    ("add-segment-size", Val::DecHex),
    ("preallocated-fifo-pairs", Val::Dec),
    ("rx-fifo-size", Val::DecHex),
    ("tx-fifo-size", Val::DecHex),
    ("event-queue-size", Val::DecHex),
    ("app-timeout", Val::Float),
    ("session-timeout", Val::Float),
    ("app-proxy-transport-tcp", Val::Flag),
    ("app-proxy-transport-udp", Val::Flag),
    ("app-scope-local", Val::Flag),
    ("app-scope-global", Val::Flag),
    ("huge_page", Val::Flag),
    ("use-mq-eventfd", Val::Flag),
    ("tls-engine", Val::Dec),
    ("multi-thread-workers", Val::Flag),
    ("app_original_dst", Val::Flag),
    ("namespace-secret", Val::Dec),
    ("namespace-id", Val::Word),
    ("api-socket-name", Val::Word),
    ("uid", Val::Dec),
    ("gid", Val::Dec),
    ("busy-poll-usec", Val::Dec),
    ("reattach", Val::Word),
];

fn lookup(kw: &str) -> Option<Val> {
    KEYWORDS.iter().find(|(k, _)| *k == kw).map(|&(_, v)| v)
}

/// A word and the 1-based line it is on.
type Tok<'a> = (usize, &'a str);

/// Splits into words, dropping `#` comments and making `{`/`}` words of their
/// own (no value may contain a brace, so `vcl{` and `x}` split safely).
fn tokenize(text: &str) -> Vec<Tok<'_>> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        'line: for word in line.split_ascii_whitespace() {
            let mut rest = word;
            let mut comment = false;
            if let Some(n) = rest.find('#') {
                rest = &rest[..n];
                comment = true;
            }
            while !rest.is_empty() {
                let cut = match rest.find(['{', '}']) {
                    Some(0) => 1,
                    Some(n) => n,
                    None => rest.len(),
                };
                out.push((i + 1, &rest[..cut]));
                rest = &rest[cut..];
            }
            if comment {
                break 'line;
            }
        }
    }
    out
}

/// Parses vcl.conf text; `source` names it in messages (usually the path).
pub fn parse_str(text: &str, source: &str) -> Result<Parsed, ConfigError> {
    let toks = tokenize(text);
    let mut cfg = Config::default();
    let mut warnings = Vec::new();
    let err = |line: usize, kw: &str, message: String| ConfigError::Syntax {
        file: source.to_string(),
        line,
        keyword: kw.to_string(),
        message,
    };
    // The value of toks[i]: the next word if it is on the same line.
    let value_of = |i: usize| -> Option<&str> {
        toks.get(i + 1)
            .filter(|(l, _)| *l == toks[i].0)
            .map(|&(_, w)| w)
    };

    // heapsize pre-scan: anywhere in the file, last one wins.
    for (i, &(line, w)) in toks.iter().enumerate() {
        if w == "heapsize" {
            cfg.heapsize = mem_size(value_of(i)).map_err(|m| err(line, w, m))?;
        }
    }

    #[derive(PartialEq)]
    enum State {
        Before,
        Inside,
        After,
    }
    let mut state = State::Before;
    let mut ignored_line = 0; // last line already warned about, before the block
    let mut warned_after = false;
    let mut i = 0;
    while i < toks.len() {
        let (line, w) = toks[i];
        match state {
            State::Before | State::After => {
                if state == State::Before && w == "vcl" && toks.get(i + 1).map(|t| t.1) == Some("{")
                {
                    state = State::Inside;
                    i += 2;
                    continue;
                }
                if w == "heapsize" {
                    i += 1 + value_of(i).is_some() as usize;
                    continue;
                }
                if state == State::Before && line != ignored_line {
                    ignored_line = line;
                    warnings.push(format!(
                        "{source}:{line}: ignoring '{w}' outside the vcl {{ }} block"
                    ));
                } else if state == State::After && !warned_after {
                    warned_after = true;
                    warnings.push(format!(
                        "{source}:{line}: ignoring everything after the end of the vcl block"
                    ));
                }
                i += 1;
            }
            State::Inside if w == "}" => {
                state = State::After;
                i += 1;
            }
            State::Inside => match lookup(w) {
                Some(Val::Flag) => {
                    set_flag(&mut cfg, w);
                    i += 1;
                }
                Some(kind) => {
                    let v = value_of(i);
                    set_value(&mut cfg, w, kind, v).map_err(|m| err(line, w, m))?;
                    i += 2;
                }
                None => {
                    // Skip what looks like this option's arguments: the rest of
                    // the line up to the next keyword or the closing brace.
                    let mut j = i + 1;
                    while j < toks.len()
                        && toks[j].0 == line
                        && toks[j].1 != "}"
                        && lookup(toks[j].1).is_none()
                    {
                        j += 1;
                    }
                    let text: Vec<&str> = toks[i..j].iter().map(|t| t.1).collect();
                    warnings.push(format!(
                        "{source}:{line}: unknown vcl option '{}', ignored{}",
                        text.join(" "),
                        hint(w)
                    ));
                    i = j;
                }
            },
        }
    }
    match state {
        State::Inside => warnings.push(format!("{source}: vcl block is not closed by '}}'")),
        State::Before if !toks.is_empty() => {
            warnings.push(format!("{source}: no 'vcl {{' block found, using defaults"))
        }
        _ => {}
    }
    Ok(Parsed {
        config: cfg,
        warnings,
        source: Some(source.to_string()),
    })
}

/// Suggests the right spelling when only '-' vs '_' is wrong (upstream mixes
/// both: `huge_page`, `app_original_dst`).
fn hint(w: &str) -> String {
    [w.replace('-', "_"), w.replace('_', "-")]
        .into_iter()
        .find(|alt| alt != w && lookup(alt).is_some())
        .map(|alt| format!(" (did you mean '{alt}'?)"))
        .unwrap_or_default()
}

fn set_flag(cfg: &mut Config, kw: &str) {
    let field = match kw {
        "app-proxy-transport-tcp" => &mut cfg.app_proxy_transport_tcp,
        "app-proxy-transport-udp" => &mut cfg.app_proxy_transport_udp,
        "app-scope-local" => &mut cfg.app_scope_local,
        "app-scope-global" => &mut cfg.app_scope_global,
        "huge_page" => &mut cfg.huge_page,
        "use-mq-eventfd" => &mut cfg.use_mq_eventfd,
        "multi-thread-workers" => &mut cfg.mt_wrk_supported,
        "app_original_dst" => &mut cfg.app_original_dst,
        _ => unreachable!("flag keyword missing from set_flag: {kw}"),
    };
    *field = true;
}

fn set_value(cfg: &mut Config, kw: &str, kind: Val, v: Option<&str>) -> Result<(), String> {
    match (kw, kind) {
        // Already applied by the pre-scan; the value was validated there.
        ("heapsize", _) => {}
        ("app-socket-api", _) => {
            let s = v.ok_or_else(|| format!("expected a socket address, got {}", got(v)))?;
            cfg.app_socket_api = Some(parse_sapi_addr(s)?);
        }
        ("namespace-id", _) => cfg.namespace_id = Some(word(v)?),
        ("api-socket-name", _) => cfg.vpp_bapi_socket_name = Some(word(v)?),
        ("app-timeout", _) => cfg.app_timeout = float(v)?,
        ("session-timeout", _) => cfg.session_timeout = float(v)?,
        ("segment-baseva", _) => cfg.segment_baseva = number(v, kind)?,
        ("segment-size", _) => cfg.segment_size = number(v, kind)?,
        ("add-segment-size", _) => cfg.add_segment_size = number(v, kind)?,
        ("namespace-secret", _) => cfg.namespace_secret = number(v, kind)?,
        ("max-workers", _) => cfg.max_workers = number(v, kind)?,
        ("preallocated-fifo-pairs", _) => cfg.preallocated_fifo_pairs = number(v, kind)?,
        ("rx-fifo-size", _) => cfg.rx_fifo_size = number(v, kind)?,
        ("tx-fifo-size", _) => cfg.tx_fifo_size = number(v, kind)?,
        ("event-queue-size", _) => cfg.event_queue_size = number(v, kind)?,
        ("tls-engine", _) => cfg.tls_engine = number(v, kind)?,
        ("uid", _) => cfg.uid = Some(number(v, kind)?),
        ("gid", _) => cfg.gid = Some(number(v, kind)?),
        ("busy-poll-usec", _) => cfg.busy_poll_usec = number(v, kind)?,
        ("reattach", _) => cfg.reattach = on_off(v)?,
        _ => unreachable!("valued keyword missing from set_value: {kw}"),
    }
    Ok(())
}

/// `on` or `off` (also `yes`/`no`, `1`/`0`).
pub(super) fn on_off(v: Option<&str>) -> Result<bool, String> {
    match v {
        Some("on" | "yes" | "1") => Ok(true),
        Some("off" | "no" | "0") => Ok(false),
        _ => Err(format!("expected on or off, got {}", got(v))),
    }
}

/// How a missing or bad token reads in an error message.
fn got(v: Option<&str>) -> String {
    match v {
        Some(s) => format!("'{s}'"),
        None => "end of line".into(),
    }
}

fn word(v: Option<&str>) -> Result<String, String> {
    match v {
        Some(s) if s != "{" && s != "}" => Ok(s.to_string()),
        _ => Err(format!("expected a value, got {}", got(v))),
    }
}

/// Reads an unsigned integer of the target width; `DecHex` also takes `0x`.
fn number<T: TryFrom<u64>>(v: Option<&str>, kind: Val) -> Result<T, String> {
    let hex_ok = kind == Val::DecHex;
    let expected = if hex_ok {
        "expected a number (decimal or 0x hex)"
    } else {
        "expected a number"
    };
    let bad = || format!("{expected}, got {}", got(v));
    let s = v.ok_or_else(bad)?;
    let (digits, radix) = match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(h) if hex_ok => (h, 16),
        _ => (s, 10),
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return Err(bad());
    }
    let out_of_range = || {
        let max = std::mem::size_of::<T>() * 8;
        format!("'{s}' is out of range (must fit in {max} bits)")
    };
    let n = u64::from_str_radix(digits, radix).map_err(|_| out_of_range())?;
    T::try_from(n).map_err(|_| out_of_range())
}

/// A decimal float as upstream's `%f` reads it: sign, digits, point,
/// exponent; no `inf`/`nan`.
fn float(v: Option<&str>) -> Result<f64, String> {
    let bad = || format!("expected a number of seconds, got {}", got(v));
    let s = v.ok_or_else(bad)?;
    if !s.chars().all(|c| c.is_ascii_digit() || "+-.eE".contains(c)) {
        return Err(bad());
    }
    s.parse::<f64>()
        .ok()
        .filter(|f| f.is_finite())
        .ok_or_else(bad)
}

/// A memory size: decimal digits and an optional k/m/g (any case) suffix.
fn mem_size(v: Option<&str>) -> Result<u64, String> {
    let bad = || {
        format!(
            "expected a size like 256M (optional k, m or g suffix), got {}",
            got(v)
        )
    };
    let s = v.ok_or_else(bad)?;
    let (digits, shift) = match s.as_bytes().last() {
        Some(b'k' | b'K') => (&s[..s.len() - 1], 10),
        Some(b'm' | b'M') => (&s[..s.len() - 1], 20),
        Some(b'g' | b'G') => (&s[..s.len() - 1], 30),
        _ => (s, 0),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    digits
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(1 << shift))
        .ok_or_else(|| format!("'{s}' is out of range"))
}
