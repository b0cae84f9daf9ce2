//! What a session is ready for now: epoll readiness (for epoll, select and poll) and the
//! byte counts of VPPCOM_ATTR_GET_NREAD / GET_NWRITE (upstream's vcl_session_read_ready and
//! vcl_session_write_ready).

use vcl_svm::fifo::segs::SESSION_CONN_HDR_LEN;

use crate::error::{Error, Result};
use crate::table::{Events, Session, State};

use super::dgram::is_cl;

/// What a session is ready for now, as epoll bits (before masking with its registration).
pub(crate) fn readiness(s: &Session) -> Events {
    let dgram_open = s.state == State::Ready || s.state == State::Listen && is_cl(s);
    if s.is_dgram() && dgram_open && s.fifos.is_some() {
        return super::dgram::readiness(s);
    }
    match s.state {
        State::Listen if !s.accept_q.is_empty() => Events::IN,
        State::Ready => {
            let mut ev = Events::NONE;
            // a QUIC connection's accept queue holds its peer's new streams
            if s.rx_ready() > 0 || !s.accept_q.is_empty() {
                ev |= Events::IN;
            }
            if s.tx_space() > 0 && !s.shut_wr {
                ev |= Events::OUT;
            }
            ev
        }
        State::VppClosing if s.vpp_gone => Events::IN | Events::RDHUP | Events::HUP | Events::ERR,
        State::VppClosing => Events::IN | Events::RDHUP | Events::HUP,
        State::Reset => Events::ERR | Events::HUP | Events::IN,
        // a failed connect shows as writable + hung up (upstream); a session VPP dropped as
        // error + hang-up
        State::Detached if s.relisten && s.failure_taken => Events::NONE,
        State::Detached if s.vpp_error != 0 => Events::OUT | Events::HUP,
        State::Detached => Events::HUP | Events::ERR,
        _ => Events::NONE,
    }
}

/// Whether the attr ops see the session's fifos as usable (upstream's vcl_session_is_open).
fn is_open(s: &Session) -> bool {
    matches!(s.state, State::Ready | State::VppClosing) || (s.state == State::Listen && is_cl(s))
}

fn not_open_error(s: &Session) -> Error {
    if s.state == State::Reset {
        Error::ConnReset
    } else {
        Error::NotConn
    }
}

/// Bytes (or, for datagrams, the next datagram's length; 1 for an empty one) readable now;
/// a listener's pending accepts (upstream's vcl_session_read_ready).
pub fn read_ready(s: &Session) -> Result<i32> {
    if s.is_vep {
        return Err(Error::BadFd);
    }
    if is_open(s) {
        let Some(f) = s.fifos.as_ref() else {
            return Ok(0);
        };
        let rx = f.rx.fifo();
        let max_deq = rx.max_dequeue_cons();
        if !s.is_dgram() {
            return Ok(max_deq as i32);
        }
        if max_deq as usize <= SESSION_CONN_HDR_LEN {
            return Ok(0);
        }
        let mut ph = [0u8; 8];
        if !matches!(rx.peek(0, &mut ph), Ok(8)) {
            return Ok(0);
        }
        let data_len = u32::from_ne_bytes([ph[0], ph[1], ph[2], ph[3]]);
        let whole = u64::from(data_len) + SESSION_CONN_HDR_LEN as u64;
        if whole > u64::from(max_deq) {
            return Ok(0);
        }
        return Ok(data_len.max(1) as i32);
    }
    if s.state == State::Listen {
        return Ok(s.accept_q.len() as i32);
    }
    Err(not_open_error(s))
}

/// Bytes writable now (datagrams: minus one datagram header); upstream's
/// vcl_session_write_ready.
pub fn write_ready(s: &Session) -> Result<i32> {
    if s.is_vep {
        return Err(Error::BadFd);
    }
    let tx = || s.fifos.as_ref().map(|f| f.tx.fifo());
    if is_open(s) {
        let Some(tx) = tx() else { return Ok(0) };
        let max_enq = tx.max_enqueue_prod();
        if !s.is_dgram() {
            return Ok(max_enq as i32);
        }
        return Ok(max_enq.saturating_sub(SESSION_CONN_HDR_LEN as u32) as i32);
    }
    if s.state == State::Listen {
        return tx()
            .map(|t| t.max_enqueue_prod() as i32)
            .ok_or(Error::BadFd);
    }
    Err(not_open_error(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_counts_keep_upstream_quirks() {
        let mut s = Session::new(0, false);
        assert_eq!(read_ready(&s), Err(Error::NotConn));
        s.state = State::Listen;
        assert_eq!(
            (read_ready(&s), write_ready(&s)),
            (Ok(0), Err(Error::BadFd))
        );
        s.state = State::Reset;
        assert_eq!(write_ready(&s), Err(Error::ConnReset));
        assert_eq!(readiness(&s), Events::ERR | Events::HUP | Events::IN);
    }
}
