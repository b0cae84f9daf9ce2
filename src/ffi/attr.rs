//! vppcom_session_attr: get and set session attributes (VPPCOM_ATTR_*).

use std::ffi::{c_int, c_void};

use super::session::{endpoint_out, with_worker};
use super::types::vppcom_endpt_t;
use super::{abi::*, guard, VPPCOM_EFAULT};
use crate::error::Error;
use crate::session::{self, rx_ready, tx_space};

/// Get or set attribute `op` of a session through `buffer`/`buflen`.
#[no_mangle]
pub extern "C" fn vppcom_session_attr(
    session_handle: u32,
    op: u32,
    buffer: *mut c_void,
    buflen: *mut u32,
) -> c_int {
    guard("vppcom_session_attr", VPPCOM_EFAULT, || {
        with_worker(|w| {
            let mut ss = w.sessions.lock();
            let i = session::lookup(w, &ss, session_handle)?;
            let s = ss.get_mut(i).expect("found");
            // SAFETY: buflen is NULL or points at the caller's length word.
            let len = unsafe { buflen.as_mut() };
            let int_buf = |len: &Option<&mut u32>, exact: bool| {
                let ok = !buffer.is_null()
                    && len.as_ref().is_some_and(|l| {
                        if exact {
                            **l as usize == 4
                        } else {
                            **l as usize >= 4
                        }
                    });
                ok.then_some(buffer as *mut u32)
            };
            let ep_buf = |len: &Option<&mut u32>| {
                let ep = buffer as *mut vppcom_endpt_t;
                // SAFETY: with a big enough length the buffer is a caller-owned endpoint.
                let ok = !buffer.is_null()
                    && len
                        .as_ref()
                        .is_some_and(|l| **l as usize >= size_of::<vppcom_endpt_t>())
                    && !unsafe { (*ep).ip.is_null() };
                ok.then_some(ep)
            };
            match op as c_int {
                VPPCOM_ATTR_GET_NREAD => Ok(rx_ready(s) as i32),
                VPPCOM_ATTR_GET_NWRITE => Ok(tx_space(s) as i32),
                VPPCOM_ATTR_GET_FLAGS => {
                    let p = int_buf(&len, false).ok_or(Error::Inval)?;
                    let flags = libc::O_RDWR as u32
                        | if s.nonblocking {
                            libc::O_NONBLOCK as u32
                        } else {
                            0
                        };
                    // SAFETY: int_buf checked a non-null buffer of at least 4 bytes.
                    unsafe { p.write_unaligned(flags) };
                    if let Some(l) = len {
                        *l = 4;
                    }
                    Ok(0)
                }
                VPPCOM_ATTR_SET_FLAGS => {
                    let p = int_buf(&len, true).ok_or(Error::Inval)?;
                    // SAFETY: int_buf checked a non-null buffer of exactly 4 bytes.
                    s.nonblocking = unsafe { p.read_unaligned() } & libc::O_NONBLOCK as u32 != 0;
                    Ok(0)
                }
                VPPCOM_ATTR_GET_PEER_ADDR | VPPCOM_ATTR_GET_LCL_ADDR => {
                    let ep = ep_buf(&len).ok_or(Error::Inval)?;
                    let from = if op as c_int == VPPCOM_ATTR_GET_PEER_ADDR {
                        s.rmt
                    } else {
                        s.lcl
                    };
                    endpoint_out(ep, &from);
                    if let Some(l) = len {
                        *l = size_of::<vppcom_endpt_t>() as u32;
                    }
                    Ok(0)
                }
                _ => {
                    tracing::debug!("vppcom_session_attr: op {op} not supported yet");
                    Err(Error::NotSup)
                }
            }
        })
    })
}
