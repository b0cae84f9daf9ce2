//! The sapi request handlers of the emulated VPP: ATTACH (session_api.c
//! `session_api_attach_handler` → application.c `vnet_application_attach`), ADD_DEL_WORKER
//! (`sapi_add_del_worker_handler` → `vnet_app_worker_add_del`), ADD_DEL_CERT_KEY
//! (`sapi_add_del_cert_key_handler`), plus segment add/delete for tests
//! (`segment_manager_add_segment` with notification, `segment_manager_del_segment`).

use std::collections::VecDeque;
use std::os::fd::{AsRawFd, OwnedFd};

use vcl_codec::sapi::{
    app_flags, fd_flags, opt, Attach, AttachReply, CertKeyAddDel, CertKeyAddDelReply, SapiMsg,
    WorkerAddDel, WorkerAddDelReply,
};
use vcl_codec::session_error::{SESSION_E_APP_ATTACHED, SESSION_E_INVALID, SESSION_E_NOSUPPORT};

use crate::pool::Pool;
use crate::vpp::segment_manager::{segment_handle, SegManager, SegOwner, SmProps};
use crate::vpp::state::{dup_fd, App, AppWorker, SapiReply, State, WrkEvt, INVALID};

/// VPP's limits on cert/key payloads (session_api.c `sapi_add_del_cert_key_handler`).
pub const MAX_CERTKEY_LEN: u16 = 20000;
pub const MAX_CERT_LEN: u16 = 10000;
pub const MAX_KEY_LEN: u16 = 10000;

/// What a new worker got: global index, map index, mq offset, first segment handle and fds.
struct NewWorker {
    wrk: u32,
    map: u32,
    mq_off: u64,
    seg_handle: u64,
    seg_fd: Option<i32>,
    evt_fd: Option<i32>,
    seg: Option<std::sync::Arc<vcl_svm::Segment>>,
}

impl State {
    fn reply(sock: u32, msg: SapiMsg, fds: Vec<OwnedFd>) -> SapiReply {
        SapiReply {
            sock,
            bytes: msg.encode(),
            fds,
        }
    }

    /// Handle ATTACH on socket `sock`. On error the reply carries only retval and no fds.
    pub fn attach(&mut self, sock: u32, mut a: Attach) -> SapiReply {
        a.name[63] = 0;
        let handle = State::sock_handle(sock);
        let r = match self.faults.refuse_attach {
            Some(rv) => Err(rv),
            None => self.vnet_application_attach(handle, &a),
        };
        let (rv, nw) = match r {
            Ok(nw) => (0, Some(nw)),
            Err(rv) => (rv, None),
        };
        let Some((app, nw)) = nw else {
            tracing::warn!(sock, rv, "attach returned error");
            let m = AttachReply {
                retval: rv,
                ..Default::default()
            };
            return State::reply(sock, SapiMsg::AttachReply(m), Vec::new());
        };
        if let Some(s) = self.socks.get_mut(sock) {
            s.app_wrk_index = nw.wrk;
        }
        if let (Some(c), Some(seg)) = (self.faults.corrupt_segment, nw.seg.as_ref()) {
            crate::faults::corrupt(seg, nw.mq_off, c);
        }
        let ctrl = u8::from(self.threads > 1);
        let mut flags = fd_flags::VPP_MQ_SEGMENT;
        let mut fds = vec![self.vpp_mqs_fd];
        if let Some(fd) = nw.seg_fd {
            flags |= fd_flags::MEMFD_SEGMENT;
            fds.push(fd);
        }
        // The eventfd is sent whenever the app asked for it (the attach handler tests the
        // option flag, not whether the queue got one).
        if a.options[opt::FLAGS] & app_flags::EVT_MQ_USE_EVENTFD != 0 {
            if let Some(fd) = nw.evt_fd {
                flags |= fd_flags::MQ_EVENTFD;
                fds.push(fd);
            }
        }
        let owned: Vec<OwnedFd> = fds.iter().filter_map(|&f| dup_fd(f).ok()).collect();
        let m = AttachReply {
            retval: 0,
            app_index: app,
            app_mq: nw.mq_off,
            vpp_ctrl_mq: self
                .vpp_mq_offsets
                .get(usize::from(ctrl))
                .copied()
                .unwrap_or(u64::MAX),
            segment_handle: nw.seg_handle,
            api_client_handle: handle,
            vpp_ctrl_mq_thread: ctrl,
            n_fds: owned.len() as u8,
            fd_flags: flags,
        };
        State::reply(sock, SapiMsg::AttachReply(m), owned)
    }

    /// application.c `vnet_application_attach` for a sapi client.
    fn vnet_application_attach(
        &mut self,
        handle: u32,
        a: &Attach,
    ) -> Result<(u32, NewWorker), i32> {
        if self.app_lookup(handle).is_some() {
            return Err(SESSION_E_APP_ATTACHED);
        }
        let mut o = a.options;
        o[opt::NAMESPACE] = u64::from(crate::vpp::state::NS_INDEX);
        let app = self.application_alloc_and_init(handle, a.name_bytes(), &o)?;
        let nw = self.alloc_worker_and_init(app)?;
        if let Some(w) = self.wrks.get_mut(nw.wrk) {
            w.api_client_index = handle;
        }
        if o[opt::FLAGS] & app_flags::IS_PROXY != 0 {
            tracing::warn!(app, "proxy apps are not emulated: no proxy listeners");
        }
        Ok((app, nw))
    }

    /// application.c `application_alloc_and_init`. The app index is taken before the option
    /// checks, so a refused attach still consumes it (VPP leaks the pool entry).
    fn application_alloc_and_init(
        &mut self,
        handle: u32,
        name: &[u8],
        o: &[u64; 18],
    ) -> Result<u32, i32> {
        let flags = o[opt::FLAGS];
        let builtin = flags & app_flags::IS_BUILTIN != 0;
        let memfd = !builtin || flags & app_flags::MEMFD_FOR_BUILTIN != 0;
        let mut flags_now = flags;
        if flags & (app_flags::USE_GLOBAL_SCOPE | app_flags::USE_LOCAL_SCOPE) == 0 {
            flags_now |= app_flags::USE_GLOBAL_SCOPE;
        }
        let props = SmProps::from_options(o, self.threads, memfd);
        let app = self.apps.put(App {
            name: name.to_vec(),
            flags: flags_now,
            props,
            worker_maps: Pool::default(),
        });
        if flags & app_flags::EVT_MQ_USE_EVENTFD != 0 && !memfd {
            return Err(SESSION_E_NOSUPPORT);
        }
        if o[opt::PREALLOC_FIFO_PAIRS] != 0 && o[opt::PREALLOC_FIFO_HDRS] != 0 {
            return Err(SESSION_E_NOSUPPORT);
        }
        if !builtin {
            self.api_table.insert(handle, app);
        }
        Ok(app)
    }

    /// application.c `application_alloc_worker_and_init`: worker + map entry + connects segment
    /// manager with its first segment and app mq.
    fn alloc_worker_and_init(&mut self, app: u32) -> Result<NewWorker, i32> {
        let threads = self.threads;
        let props = self.apps.get(app).ok_or(SESSION_E_INVALID)?.props.clone();
        let wrk = self.wrks.put(AppWorker {
            app_index: app,
            wrk_map_index: INVALID,
            api_client_index: INVALID,
            sm_index: INVALID,
            mq: None,
            evts: vec![VecDeque::new(); usize::from(threads)],
            congested: vec![false; usize::from(threads)],
        });
        let map = match self.apps.get_mut(app) {
            Some(a) => a.worker_maps.put(wrk),
            None => return Err(SESSION_E_INVALID),
        };
        let mut sm = SegManager::new(wrk);
        let owner = SegOwner {
            app_index: app,
            wrk_index: wrk,
            threads,
            max_size: self.max_segment_size,
        };
        let mq = match sm.init_first(&props, owner, &mut self.seg_name_counter) {
            Ok(mq) => mq,
            Err(rv) => {
                // VPP frees the worker but leaks the map entry and the segment manager.
                self.sms.put(sm);
                self.wrks.remove(wrk);
                return Err(rv);
            }
        };
        let seg = sm.seg(0);
        let sm_index = self.sms.put(sm);
        let mq_off = mq.as_ref().map_or(u64::MAX, |m| m.offset());
        let evt_fd = mq.as_ref().and_then(|m| m.mq.eventfd());
        if let Some(w) = self.wrks.get_mut(wrk) {
            w.wrk_map_index = map;
            w.sm_index = sm_index;
            w.mq = mq;
        }
        Ok(NewWorker {
            wrk,
            map,
            mq_off,
            seg_handle: segment_handle(sm_index, 0),
            seg_fd: seg
                .as_ref()
                .filter(|_| props.memfd)
                .map(|s| s.fd().as_raw_fd()),
            evt_fd,
            seg,
        })
    }

    /// Handle ADD_DEL_WORKER. A delete never gets a reply with sapi, not even an error.
    pub fn worker_add_del(&mut self, sock: u32, m: WorkerAddDel) -> Option<SapiReply> {
        let handle = State::sock_handle(sock);
        if !self.apps.contains(m.app_index) {
            return (m.is_add).then(|| Self::worker_reply(sock, &m, SESSION_E_INVALID, INVALID));
        }
        if !m.is_add {
            if let Err(rv) = self.worker_del(m.app_index, m.wrk_index) {
                tracing::warn!(
                    rv,
                    app = m.app_index,
                    map = m.wrk_index,
                    "worker del failed"
                );
            }
            return None;
        }
        let nw = match self.alloc_worker_and_init(m.app_index) {
            Ok(nw) => nw,
            Err(rv) => return Some(Self::worker_reply(sock, &m, rv, handle)),
        };
        if let Some(w) = self.wrks.get_mut(nw.wrk) {
            w.api_client_index = handle;
        }
        self.api_table.insert(handle, m.app_index);
        let use_evt = self
            .apps
            .get(m.app_index)
            .is_some_and(|a| a.props.use_mq_eventfd);
        let mut flags = 0;
        let mut fds = Vec::new();
        if let Some(fd) = nw.seg_fd {
            flags |= fd_flags::MEMFD_SEGMENT;
            fds.push(fd);
        }
        if let (true, Some(fd)) = (use_evt, nw.evt_fd) {
            flags |= fd_flags::MQ_EVENTFD;
            fds.push(fd);
        }
        if let Some(s) = self.socks.get_mut(sock) {
            s.app_wrk_index = nw.wrk;
        }
        let owned: Vec<OwnedFd> = fds.iter().filter_map(|&f| dup_fd(f).ok()).collect();
        let r = WorkerAddDelReply {
            retval: 0,
            wrk_index: nw.map,
            app_event_queue_address: nw.mq_off,
            segment_handle: nw.seg_handle,
            api_client_handle: handle,
            n_fds: owned.len() as u8,
            fd_flags: flags,
            is_add: true,
        };
        Some(State::reply(sock, SapiMsg::AddDelWorkerReply(r), owned))
    }

    /// An add-worker error reply: the request's wrk_index echoed, the socket's handle (or ~0
    /// when the app was not found before the handle was computed).
    fn worker_reply(sock: u32, m: &WorkerAddDel, rv: i32, handle: u32) -> SapiReply {
        let r = WorkerAddDelReply {
            retval: rv,
            wrk_index: m.wrk_index,
            api_client_handle: handle,
            is_add: m.is_add,
            ..Default::default()
        };
        State::reply(sock, SapiMsg::AddDelWorkerReply(r), Vec::new())
    }

    /// Handle ADD_DEL_CERT_KEY once the payload (for an add) was read: `payload` is None when
    /// it could not be read. Limits and order of checks as in VPP.
    pub fn cert_key(&mut self, sock: u32, m: CertKeyAddDel, payload: Option<Vec<u8>>) -> SapiReply {
        let r = if m.is_add {
            self.cert_key_add(&m, payload)
        } else {
            self.ckpairs
                .remove(m.index)
                .map(|_| 0)
                .ok_or(SESSION_E_INVALID)
        };
        let (retval, index) = match r {
            Ok(i) if m.is_add => (0, i),
            Ok(_) => (0, 0),
            Err(rv) => (rv, 0),
        };
        let rep = CertKeyAddDelReply {
            context: m.context,
            retval,
            index,
        };
        State::reply(sock, SapiMsg::AddDelCertKeyReply(rep), Vec::new())
    }

    fn cert_key_add(&mut self, m: &CertKeyAddDel, payload: Option<Vec<u8>>) -> Result<u32, i32> {
        if m.certkey_len > MAX_CERTKEY_LEN {
            return Err(SESSION_E_INVALID);
        }
        let data = payload.ok_or(SESSION_E_INVALID)?;
        if m.cert_len > MAX_CERT_LEN || m.certkey_len < m.cert_len {
            return Err(SESSION_E_INVALID);
        }
        if m.certkey_len - m.cert_len > MAX_KEY_LEN {
            return Err(SESSION_E_INVALID);
        }
        let (cert, key) = data.split_at(usize::from(m.cert_len).min(data.len()));
        Ok(self.ckpairs.put(crate::vpp::state::CertKey {
            cert: cert.to_vec(),
            key: key.to_vec(),
        }))
    }

    /// `segment_manager_add_segment (sm, size, notify_app = 1)` on a worker's connects segment
    /// manager; the APP_ADD_SEGMENT event is queued on VPP thread 0. Returns the handle.
    pub fn add_segment(&mut self, app: u32, wrk_map: u32, size: u64) -> std::io::Result<u64> {
        let notfound = || std::io::Error::new(std::io::ErrorKind::NotFound, "no such app worker");
        let wrk = self.worker_of(app, wrk_map).ok_or_else(notfound)?;
        let sm_index = self.wrks.get(wrk).ok_or_else(notfound)?.sm_index;
        let props = self.apps.get(app).ok_or_else(notfound)?.props.clone();
        let owner = SegOwner {
            app_index: app,
            wrk_index: wrk,
            threads: self.threads,
            max_size: self.max_segment_size,
        };
        let counter = &mut self.seg_name_counter;
        let sm = self.sms.get_mut(sm_index).ok_or_else(notfound)?;
        let idx = sm
            .add_segment(&props, owner, size, counter)?
            .ok_or_else(|| std::io::Error::other("segment manager may not grow"))?;
        let h = segment_handle(sm_index, idx);
        self.add_event(wrk, 0, WrkEvt::AddSegment(h));
        Ok(h)
    }

    /// `segment_manager_del_segment`: queue APP_DEL_SEGMENT for the owning worker on thread 0
    /// and unmap/close the segment right away.
    pub fn del_segment(&mut self, handle: u64) -> std::io::Result<()> {
        let sm_index = ((handle >> 32) & 0xff_ffff) as u32;
        let seg_index = handle as u32;
        let sm = self.sms.get_mut(sm_index).ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no such segment manager")
        })?;
        sm.segments
            .remove(seg_index)
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such segment"))?;
        let wrk = sm.app_wrk_index;
        self.add_event(wrk, 0, WrkEvt::DelSegment(handle));
        Ok(())
    }
}
