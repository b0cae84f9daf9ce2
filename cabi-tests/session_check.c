/* Session API check against VPP v26.06's VCL semantics, with an attached app (VCL_CONFIG given
 * by the caller): every session, I/O, epoll, poll and select function with good and bad input.
 * A listener and clients live in this one process and talk over transport (kernel TCP in the
 * test peer).  Builds as C and as C++, against libvcl or against upstream's libvppcom:
 *   cc -DVCL_CHECK_UPSTREAM -I$VPP/src/vcl ... -lvppcom   (upstream's vppcom.h and library)
 * VCL_CHECK_UPSTREAM skips the checks of libvcl's hardening where upstream crashes, and makes
 * each documented difference (README, "differs on purpose") expect upstream's value.
 *   usage: session_check LISTEN_PORT REFUSED_PORT
 * Prints the library it runs on, each known difference ("DIFFERS ON PURPOSE ..."), then
 * "N passed, M failed, K known differences"; exits non-zero on any failure. */
#include "check_util.h"

static const uint32_t BAD = 0x00abcdef;	      /* worker 0, an index never allocated */
static const uint32_t BAD_WRK = 0x07000001;   /* a worker that does not exist */

static void
bad_handles (void)
{
  char buf[16];
  uint32_t len = sizeof (buf);
  uint8_t ip[4] = { 127, 0, 0, 1 };
  struct epoll_event ev, evs[4];
  vppcom_endpt_t ep;
  vppcom_data_segment_t ds[2];
  vcl_poll_t vp;
  int vep;

  memset (&ev, 0, sizeof (ev));
  memset (ds, 0, sizeof (ds));
  memset (&vp, 0, sizeof (vp));
  make_ep (&ep, ip, 1);
  ds[0].data = (unsigned char *) buf;
  ds[0].len = 4;

  check ("close bad", vppcom_session_close (BAD), VPPCOM_EBADFD);
  check ("close bad worker", vppcom_session_close (BAD_WRK), VPPCOM_EBADFD);
  check ("close INVALID_SESSION_ID", vppcom_session_close (INVALID_SESSION_ID), VPPCOM_EBADFD);
  check ("shutdown bad", vppcom_session_shutdown (BAD, SHUT_RDWR), VPPCOM_EBADFD);
  check ("terminate bad", vppcom_session_terminate (BAD), VPPCOM_EBADFD);
  check ("bind bad", vppcom_session_bind (BAD, &ep), VPPCOM_EBADFD);
  check ("bind bad worker", vppcom_session_bind (BAD_WRK, &ep), VPPCOM_EBADFD);
  check ("bind null ep", vppcom_session_bind (BAD, NULL), VPPCOM_EINVAL);
  ep.ip = NULL;
  check ("bind null ip", vppcom_session_bind (BAD, &ep), VPPCOM_EINVAL);
  ep.ip = ip;
  check ("listen bad", vppcom_session_listen (BAD, 10), VPPCOM_EBADFD);
  check ("accept bad", vppcom_session_accept (BAD, &ep, 0), VPPCOM_EBADFD);
  check ("connect bad", vppcom_session_connect (BAD, &ep), VPPCOM_EBADFD);
  check ("stream_connect bad", vppcom_session_stream_connect (BAD, BAD_WRK), VPPCOM_EBADFD);
  check ("read bad", vppcom_session_read (BAD, buf, 4), VPPCOM_EBADFD);
  check ("read null", vppcom_session_read (BAD, NULL, 4), VPPCOM_EFAULT);
  check ("write bad", vppcom_session_write (BAD, buf, 4), VPPCOM_EBADFD);
  check ("write null bad", vppcom_session_write (BAD, NULL, 4), VPPCOM_EBADFD);
  check ("write_msg null bad", vppcom_session_write_msg (BAD, NULL, 4), VPPCOM_EBADFD);
  check ("write_msg bad", vppcom_session_write_msg (BAD, buf, 4), VPPCOM_EBADFD);
  check ("recvfrom bad", vppcom_session_recvfrom (BAD, buf, 4, 0, &ep), VPPCOM_EBADFD);
  check ("recvfrom peek bad", vppcom_session_recvfrom (BAD, buf, 4, MSG_PEEK, &ep),
	 VPPCOM_EBADFD);
  check ("recvfrom bad flags", vppcom_session_recvfrom (BAD, buf, 4, MSG_DONTWAIT, &ep),
	 VPPCOM_EAFNOSUPPORT);
  check ("sendto bad", vppcom_session_sendto (BAD, buf, 4, 0, NULL), VPPCOM_EBADFD);
  check ("read_segments bad", vppcom_session_read_segments (BAD, ds, 2, 100), VPPCOM_EBADFD);
  check ("write_segments bad", vppcom_session_write_segments (BAD, ds, 1), VPPCOM_EBADFD);
  check ("write_segments null", vppcom_session_write_segments (BAD, NULL, 1), VPPCOM_EFAULT);
  vppcom_session_free_segments (BAD, 4); /* must not crash */
  check ("attr bad", vppcom_session_attr (BAD, VPPCOM_ATTR_GET_FLAGS, buf, &len),
	 VPPCOM_EBADFD);
  check ("attr nread bad", vppcom_session_attr (BAD, VPPCOM_ATTR_GET_NREAD, NULL, NULL),
	 VPPCOM_EBADFD);
  check ("listener bad", vppcom_session_listener (BAD), VPPCOM_EBADFD);
  check ("n_accepted bad", vppcom_session_n_accepted (BAD), VPPCOM_EBADFD);
  check ("get_error bad", vppcom_session_get_error (BAD), VPPCOM_EBADFD);
  check ("is_stream bad", vppcom_session_is_stream (BAD), 0);
  check ("is_connectable_listener bad", vppcom_session_is_connectable_listener (BAD), 0);
  check ("poll null", vppcom_poll (NULL, 1, 0), VPPCOM_EFAULT);
  vp.sh = BAD;
  vp.events = POLLIN;
  check ("poll bad handle", vppcom_poll (&vp, 1, 0), 1);
  check ("poll bad handle revents", vp.revents, POLLHUP);

  check ("epoll_ctl vep==sh", vppcom_epoll_ctl (BAD, EPOLL_CTL_ADD, BAD, &ev), VPPCOM_EINVAL);
  check ("epoll_ctl bad vep", vppcom_epoll_ctl (BAD, EPOLL_CTL_ADD, BAD_WRK, &ev),
	 VPPCOM_EBADFD);
  check ("epoll_wait maxevents 0", vppcom_epoll_wait (BAD, evs, 0, 0), VPPCOM_EINVAL);
  check ("epoll_wait maxevents -1", vppcom_epoll_wait (BAD, evs, -1, 0), VPPCOM_EINVAL);
  check ("epoll_wait bad", vppcom_epoll_wait (BAD, evs, 4, 0), VPPCOM_EBADFD);

  /* an epoll session is not a session */
  vep = vppcom_epoll_create ();
  check_true ("epoll_create", vep >= 0);
  check ("epoll_ctl bad session", vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, BAD, &ev),
	 VPPCOM_EBADFD);
  check ("bind vep", vppcom_session_bind (vep, &ep), VPPCOM_EBADFD);
  check ("listen vep", vppcom_session_listen (vep, 10), VPPCOM_EBADFD);
  check ("connect vep", vppcom_session_connect (vep, &ep), VPPCOM_EBADFD);
  check ("read vep", vppcom_session_read (vep, buf, 4), VPPCOM_EBADFD);
  check ("write vep", vppcom_session_write (vep, buf, 4), VPPCOM_EBADFD);
  check ("read_segments vep", vppcom_session_read_segments (vep, ds, 2, 100), VPPCOM_EBADFD);
  check ("write_segments vep", vppcom_session_write_segments (vep, ds, 1), VPPCOM_EBADFD);
  check ("get_error vep", vppcom_session_get_error (vep), VPPCOM_EBADFD);
  check ("epoll_wait empty vep", vppcom_epoll_wait (vep, evs, 4, 0), 0);
  check ("close vep", vppcom_session_close (vep), 0);
  check ("close vep twice", vppcom_session_close (vep), VPPCOM_EBADFD);
  check ("epoll_wait closed vep", vppcom_epoll_wait (vep, evs, 4, 0), VPPCOM_EBADFD);
}

/* A session that was created but never connected. */
static void
unconnected (void)
{
  char buf[8] = "abc";
  vppcom_endpt_t ep;
  uint8_t ip[4] = { 0 };
  int sh = vppcom_session_create (VPPCOM_PROTO_TCP, 0);

  check_true ("create", sh >= 0);
  check ("create worker", vppcom_session_worker (sh), vppcom_worker_index ());
  check ("create index", vppcom_session_index (sh), sh & 0xffffff);
  check ("accept on a non-listener", vppcom_session_accept (sh, NULL, 0), VPPCOM_EBADFD);
  make_ep (&ep, ip, 0);
  check ("accept on a non-listener, ep", vppcom_session_accept (sh, &ep, 0), VPPCOM_EBADFD);
  check ("read unconnected", vppcom_session_read (sh, buf, sizeof (buf)), VPPCOM_ENOTCONN);
  check ("write unconnected", vppcom_session_write (sh, buf, 3), VPPCOM_ENOTCONN);
  check ("write unconnected, 0 bytes", vppcom_session_write (sh, buf, 0), 0);
  check ("listener unconnected", vppcom_session_listener (sh), VPPCOM_EBADFD);
  check ("n_accepted unconnected", vppcom_session_n_accepted (sh), 0);
  check ("get_error unconnected", vppcom_session_get_error (sh), 0);
  check ("close unconnected", vppcom_session_close (sh), 0);
  /* upstream keeps a closed never-connected session in its pool for good (state CLOSED, no
   * VPP cleanup ever comes), so closing it again succeeds; libvcl frees it on close */
  differs ("close twice", vppcom_session_close (sh), VPPCOM_EBADFD, 0);
  /* any protocol number makes a session (upstream does not check it) */
  sh = vppcom_session_create (200, 0);
  check_true ("create, unknown proto", sh >= 0);
  if (!UPSTREAM) /* upstream asks VPP, which refuses it; libvcl refuses before asking */
    {
      make_ep (&ep, ip, 1);
      check ("connect, unknown proto", vppcom_session_connect (sh, &ep), VPPCOM_EAFNOSUPPORT);
    }
  check ("close, unknown proto", vppcom_session_close (sh), 0);
}

/* connect a new blocking client to port and accept it on ls */
static int
pair (int ls, int port, int *client)
{
  uint8_t ip[4] = { 127, 0, 0, 1 }, peer[16];
  vppcom_endpt_t ep;
  int c = vppcom_session_create (VPPCOM_PROTO_TCP, 0), a;

  make_ep (&ep, ip, port);
  check ("pair: connect", vppcom_session_connect (c, &ep), 0);
  memset (&ep, 0, sizeof (ep));
  ep.ip = peer;
  a = vppcom_session_accept (ls, &ep, 0);
  check_true ("pair: accept", a >= 0);
  *client = c;
  return a;
}

static void
sessions (int port, int refused_port)
{
  uint8_t ip[4] = { 127, 0, 0, 1 }, any[4] = { 0 }, peer[16], lip[16];
  char buf[256], in[256];
  vppcom_endpt_t ep, lcl;
  vppcom_data_segment_t ds[2];
  uint32_t flags, len;
  struct epoll_event ev, evs[8];
  vcl_poll_t vp[2];
  vcl_si_set rd[4], wr[4];
  int ls, c, a, c2, a2, vep, vep2, rv, n, nbits;

  /* listener */
  ls = vppcom_session_create (VPPCOM_PROTO_TCP, 0);
  check_true ("listener create", ls >= 0);
  make_ep (&ep, any, port);
  check ("bind", vppcom_session_bind (ls, &ep), 0);
  check ("listen", vppcom_session_listen (ls, 10), 0);
  check ("listen again", vppcom_session_listen (ls, 10), 0);
  check ("n_accepted, none yet", vppcom_session_n_accepted (ls), 0);
  check ("listener of a listener", vppcom_session_listener (ls), VPPCOM_EBADFD);
  check ("shutdown listener", vppcom_session_shutdown (ls, SHUT_RDWR), VPPCOM_EBADFD);
  check ("nonblocking listener", set_nonblocking (ls, 1), 0);
  check ("nonblocking accept, none pending", vppcom_session_accept (ls, NULL, 0), VPPCOM_EAGAIN);
  check ("blocking listener", set_nonblocking (ls, 0), 0);
  memset (&lcl, 0, sizeof (lcl));
  lcl.ip = lip;
  len = sizeof (lcl);
  check ("listener lcl addr", vppcom_session_attr (ls, VPPCOM_ATTR_GET_LCL_ADDR, &lcl, &len), 0);
  check ("listener lcl port", ntohs (lcl.port), port);

  /* a client and the session it makes */
  c = vppcom_session_create (VPPCOM_PROTO_TCP, 0);
  make_ep (&ep, ip, port);
  check ("connect", vppcom_session_connect (c, &ep), 0);
  check ("connect again", vppcom_session_connect (c, &ep), 0);
  memset (&ep, 0, sizeof (ep));
  ep.ip = peer;
  a = vppcom_session_accept (ls, &ep, O_NONBLOCK);
  check_true ("accept", a >= 0);
  check ("accepted peer is ip4", ep.is_ip4, 1);
  check ("accepted peer ip", memcmp (peer, ip, 4), 0);
  memset (&lcl, 0, sizeof (lcl));
  lcl.ip = lip;
  len = sizeof (lcl);
  check ("client lcl addr", vppcom_session_attr (c, VPPCOM_ATTR_GET_LCL_ADDR, &lcl, &len), 0);
  check ("accepted peer port is the client's port", ep.port, lcl.port);
  check ("accepted: flags", (len = sizeof (flags),
			     vppcom_session_attr (a, VPPCOM_ATTR_GET_FLAGS, &flags, &len)),
	 0);
  check ("accepted with O_NONBLOCK", flags, O_RDWR | O_NONBLOCK);
  check ("listener of accepted", vppcom_session_listener (a), ls);
  check ("listener of client", vppcom_session_listener (c), VPPCOM_EBADFD);
  check ("n_accepted", vppcom_session_n_accepted (ls), 1);
  check ("get_error accepted", vppcom_session_get_error (a), 0);
  check ("get_error client", vppcom_session_get_error (c), 0);
  check ("is_stream accepted TCP (VPP sets STREAM only for QUIC streams)",
	 vppcom_session_is_stream (a), 0);
  check ("is_stream client TCP", vppcom_session_is_stream (c), 0);
  check ("is_connectable_listener", vppcom_session_is_connectable_listener (ls), 0);
  check ("session_index", vppcom_session_index (a), a & 0xffffff);
  check ("session_worker", vppcom_session_worker (a), vppcom_worker_index ());
  check ("session_worker client", vppcom_session_worker (c), 0);
  check ("accept on accepted", vppcom_session_accept (a, NULL, 0), VPPCOM_EBADFD);
  check ("accept on client", vppcom_session_accept (c, NULL, 0), VPPCOM_EBADFD);
  check ("attr unknown op", vppcom_session_attr (a, 9999, buf, &len), VPPCOM_EINVAL);
  check ("attr flags null buffer", vppcom_session_attr (a, VPPCOM_ATTR_GET_FLAGS, NULL, &len),
	 VPPCOM_EINVAL);

  /* nothing to read, non-blocking */
  check ("nonblocking read, empty", vppcom_session_read (a, buf, sizeof (buf)), VPPCOM_EAGAIN);
  check ("nonblocking read_segments, empty",
	 (ds[0].data = NULL, vppcom_session_read_segments (a, ds, 2, 100)), VPPCOM_EAGAIN);
  check ("nread, empty", vppcom_session_attr (a, VPPCOM_ATTR_GET_NREAD, NULL, NULL), 0);
  check_true ("nwrite", vppcom_session_attr (a, VPPCOM_ATTR_GET_NWRITE, NULL, NULL) > 0);

  /* NULL buffers on a good session */
  check ("read null, good session", vppcom_session_read (a, NULL, 4), VPPCOM_EFAULT);
  check ("write null, good session", vppcom_session_write (c, NULL, 4), VPPCOM_EFAULT);
  check ("write_msg null, good session", vppcom_session_write_msg (c, NULL, 4), VPPCOM_EFAULT);
  check ("write_segments null, good session", vppcom_session_write_segments (c, NULL, 1),
	 VPPCOM_EFAULT);
  /* upstream looks at the vector only when it has data to show */
  check ("read_segments null, empty nonblocking session",
	 vppcom_session_read_segments (a, NULL, 2, 100), VPPCOM_EWOULDBLOCK);
  check ("write 0 bytes", vppcom_session_write (c, buf, 0), 0);

  /* write, blocking read */
  check ("write", vppcom_session_write (c, (void *) "hello", 5), 5);
  check ("wait for data", wait_nread (a, 5), 5);
  check ("read", vppcom_session_read (a, in, sizeof (in)), 5);
  check ("read data", memcmp (in, "hello", 5), 0);
  check ("read, drained", vppcom_session_read (a, in, sizeof (in)), VPPCOM_EAGAIN);

  /* write_msg, poll */
  check ("write_msg", vppcom_session_write_msg (c, (void *) "polled", 6), 6);
  check ("wait for data 2", wait_nread (a, 6), 6);
  memset (vp, 0, sizeof (vp));
  vp[0].sh = a;
  vp[0].events = POLLIN;
  vp[1].sh = c;
  vp[1].events = POLLOUT;
  check ("poll", vppcom_poll (vp, 2, 5.0), 2);
  check ("poll revents in", vp[0].revents, POLLIN);
  check ("poll revents out", vp[1].revents, POLLOUT);
  vp[1].events = POLLIN;
  check ("poll, client has nothing to read", vppcom_poll (&vp[1], 1, 0), 0);
  check ("poll, client revents", vp[1].revents, 0);

  /* select: bit positions are session indices */
  nbits = (int) (vppcom_session_index (a) > vppcom_session_index (c)
		   ? vppcom_session_index (a) : vppcom_session_index (c)) + 1;
  if (nbits > (int) (8 * sizeof (rd)))
    {
      fprintf (stderr, "session indices too large for this test\n");
      n_fail++;
    }
  else
    {
      memset (rd, 0, sizeof (rd));
      memset (wr, 0, sizeof (wr));
      rd[vppcom_session_index (a) / 64] |= 1ul << (vppcom_session_index (a) % 64);
      rd[vppcom_session_index (c) / 64] |= 1ul << (vppcom_session_index (c) % 64);
      wr[vppcom_session_index (c) / 64] |= 1ul << (vppcom_session_index (c) % 64);
      check ("select", vppcom_select (nbits, rd, wr, NULL, 1.0), 2);
      check ("select: accepted readable",
	     !!(rd[vppcom_session_index (a) / 64] & (1ul << (vppcom_session_index (a) % 64))), 1);
      check ("select: client not readable",
	     !!(rd[vppcom_session_index (c) / 64] & (1ul << (vppcom_session_index (c) % 64))), 0);
      check ("select: client writable",
	     !!(wr[vppcom_session_index (c) / 64] & (1ul << (vppcom_session_index (c) % 64))), 1);
      check ("select 0 bits", vppcom_select (0, rd, NULL, NULL, 0), 0);
    }

  /* recvfrom with MSG_PEEK, then a normal read */
  check ("nread", vppcom_session_attr (a, VPPCOM_ATTR_GET_NREAD, NULL, NULL), 6);
  memset (&ep, 0, sizeof (ep));
  memset (peer, 0, sizeof (peer));
  ep.ip = peer;
  memset (in, 0, sizeof (in));
  check ("recvfrom peek", vppcom_session_recvfrom (a, in, sizeof (in), MSG_PEEK, &ep), 6);
  check ("recvfrom peek data", memcmp (in, "polled", 6), 0);
  check ("recvfrom peer ip", memcmp (peer, ip, 4), 0);
  check ("recvfrom peer port", ep.port, lcl.port);
  check ("nread after peek", vppcom_session_attr (a, VPPCOM_ATTR_GET_NREAD, NULL, NULL), 6);
  memset (in, 0, sizeof (in));
  check ("recvfrom", vppcom_session_recvfrom (a, in, 3, 0, NULL), 3);
  check ("recvfrom data", memcmp (in, "pol", 3), 0);
  check ("read the rest", vppcom_session_read (a, in, sizeof (in)), 3);
  check ("read the rest data", memcmp (in, "led", 3), 0);

  /* sendto on a connected TCP session */
  check ("sendto", vppcom_session_sendto (c, (void *) "sent-to", 7, 0, NULL), 7);
  make_ep (&ep, ip, port);
  check ("sendto with ep on TCP", vppcom_session_sendto (c, (void *) "x", 1, 0, &ep),
	 VPPCOM_EINVAL);
  check ("wait for sendto data", wait_nread (a, 7), 7);
  if (!UPSTREAM) /* hardening: upstream writes through the NULL vector */
    check ("read_segments null, data to show", vppcom_session_read_segments (a, NULL, 2, 100),
	   VPPCOM_EFAULT);

  /* zero-copy read */
  memset (ds, 0, sizeof (ds));
  n = vppcom_session_read_segments (a, ds, 2, 100);
  check ("read_segments", n, 7);
  if (n == 7)
    {
      /* the 7 bytes may wrap around the end of the fifo: then they are in two segments */
      uint32_t l0 = ds[0].len < 7 ? ds[0].len : 7;
      check ("read_segments lens", l0 + (l0 < 7 ? ds[1].len : 0), 7);
      check ("read_segments data",
	     memcmp (ds[0].data, "sent-to", l0) || (l0 < 7 && memcmp (ds[1].data, "sent-to" + l0, 7 - l0)),
	     0);
    }
  check ("nread while segments held", vppcom_session_attr (a, VPPCOM_ATTR_GET_NREAD, NULL, NULL),
	 7);
  vppcom_session_free_segments (a, 3);
  check ("nread after freeing 3", vppcom_session_attr (a, VPPCOM_ATTR_GET_NREAD, NULL, NULL), 4);
  check ("read after free_segments", vppcom_session_read (a, in, sizeof (in)), 4);
  check ("read after free_segments data", memcmp (in, "t-to", 4), 0);

  /* write_segments */
  memset (ds, 0, sizeof (ds));
  ds[0].data = (unsigned char *) "seg";
  ds[0].len = 3;
  ds[1].data = (unsigned char *) "ments";
  ds[1].len = 5;
  check ("write_segments", vppcom_session_write_segments (c, ds, 2), 8);
  ds[0].len = 0;
  check ("write_segments, 0 bytes", vppcom_session_write_segments (c, ds, 2), 0);
  check ("wait for segments", wait_nread (a, 8), 8);
  memset (in, 0, sizeof (in));
  check ("read written segments", vppcom_session_read (a, in, sizeof (in)), 8);
  check ("written segments data", memcmp (in, "segments", 8), 0);

  /* epoll */
  vep = vppcom_epoll_create ();
  vep2 = vppcom_epoll_create ();
  check_true ("epoll_create 2", vep >= 0 && vep2 >= 0 && vep != vep2);
  memset (&ev, 0, sizeof (ev));
  ev.events = EPOLLIN;
  ev.data.u64 = 0x1234567800000000ull | (uint32_t) a;
  check ("epoll_ctl ADD", vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, a, &ev), 0);
  check ("epoll_ctl ADD again", vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, a, &ev), VPPCOM_EEXIST);
  check ("epoll_ctl ADD to a 2nd vep", vppcom_epoll_ctl (vep2, EPOLL_CTL_ADD, a, &ev),
	 VPPCOM_EEXIST);
  check ("epoll_ctl MOD in the wrong vep", vppcom_epoll_ctl (vep2, EPOLL_CTL_MOD, a, &ev),
	 VPPCOM_EINVAL);
  check ("epoll_ctl DEL from the wrong vep", vppcom_epoll_ctl (vep2, EPOLL_CTL_DEL, a, NULL),
	 VPPCOM_EINVAL);
  check ("epoll_ctl MOD not added", vppcom_epoll_ctl (vep, EPOLL_CTL_MOD, c, &ev),
	 VPPCOM_ENOENT);
  check ("epoll_ctl DEL not added", vppcom_epoll_ctl (vep, EPOLL_CTL_DEL, c, NULL),
	 VPPCOM_ENOENT);
  check ("epoll_ctl ADD null event", vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, c, NULL),
	 VPPCOM_EINVAL);
  check ("epoll_ctl MOD null event", vppcom_epoll_ctl (vep, EPOLL_CTL_MOD, a, NULL),
	 VPPCOM_EINVAL);
  check ("epoll_ctl ADD a vep", vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, vep2, &ev),
	 VPPCOM_EINVAL);
  check ("epoll_ctl on a non-vep", vppcom_epoll_ctl (c, EPOLL_CTL_ADD, a, &ev), VPPCOM_EINVAL);
  check ("epoll_wait on a non-vep", vppcom_epoll_wait (a, evs, 8, 0), VPPCOM_EINVAL);
  check ("epoll_wait, nothing", vppcom_epoll_wait (vep, evs, 8, 0), 0);
  check ("write for epoll", vppcom_session_write (c, (void *) "ep", 2), 2);
  rv = vppcom_epoll_wait (vep, evs, 8, 5000);
  check ("epoll_wait EPOLLIN", rv, 1);
  if (rv == 1)
    {
      check ("epoll_wait events", evs[0].events, EPOLLIN);
      check ("epoll_wait data", evs[0].data.u64 == ev.data.u64, 1);
    }
  check ("read epolled", vppcom_session_read (a, in, sizeof (in)), 2);
  ev.events = EPOLLIN | EPOLLOUT;
  check ("epoll_ctl MOD", vppcom_epoll_ctl (vep, EPOLL_CTL_MOD, a, &ev), 0);
  rv = vppcom_epoll_wait (vep, evs, 8, 5000);
  check ("epoll_wait EPOLLOUT", rv, 1);
  if (rv == 1)
    check ("epoll_wait events out", evs[0].events, EPOLLOUT);
  ev.events = EPOLLOUT;
  ev.data.u32 = c;
  check ("epoll_ctl ADD client", vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, c, &ev), 0);
  check ("epoll_ctl DEL", vppcom_epoll_ctl (vep, EPOLL_CTL_DEL, a, NULL), 0);
  check ("epoll_ctl DEL again", vppcom_epoll_ctl (vep, EPOLL_CTL_DEL, a, NULL), VPPCOM_ENOENT);
  check ("epoll_ctl ADD to a 2nd vep after DEL", vppcom_epoll_ctl (vep2, EPOLL_CTL_ADD, a, &ev),
	 0);
  check ("epoll_ctl DEL from 2nd", vppcom_epoll_ctl (vep2, EPOLL_CTL_DEL, a, NULL), 0);
  check ("epoll_ctl bad op", vppcom_epoll_ctl (vep, 99, c, &ev), VPPCOM_EINVAL);
  check ("close vep2", vppcom_session_close (vep2), 0);

  /* shutdown(SHUT_WR): writes fail, the peer reads end of stream */
  check ("shutdown SHUT_WR", vppcom_session_shutdown (c, SHUT_WR), 0);
  check ("write after SHUT_WR", vppcom_session_write (c, (void *) "x", 1), VPPCOM_EPIPE);
  ds[0].len = 1;
  check ("write_segments after SHUT_WR", vppcom_session_write_segments (c, ds, 1),
	 VPPCOM_EPIPE);
  check ("write_msg after SHUT_WR", vppcom_session_write_msg (c, (void *) "x", 1),
	 VPPCOM_EPIPE);
  check ("blocking accepted", set_nonblocking (a, 0), 0);
  check ("read after peer SHUT_WR", vppcom_session_read (a, in, sizeof (in)), 0);
  check ("close accepted", vppcom_session_close (a), 0);
  check ("n_accepted after close", vppcom_session_n_accepted (ls), 0);
  check ("close client", vppcom_session_close (c), 0);
  /* upstream keeps a closed session until VPP confirms (and took it out of its vep) */
  differs ("close client twice", vppcom_session_close (c), VPPCOM_EBADFD, 0);
  differs ("epoll_ctl DEL closed client", vppcom_epoll_ctl (vep, EPOLL_CTL_DEL, c, NULL),
	   VPPCOM_EBADFD, VPPCOM_ENOENT);

  /* data then close: the data arrives, then end of stream */
  a2 = pair (ls, port, &c2);
  memset (buf, 'z', sizeof (buf));
  check ("write before close", vppcom_session_write (c2, buf, sizeof (buf)), (long) sizeof (buf));
  check ("close after write", vppcom_session_close (c2), 0);
  check ("read data sent before close", read_n (a2, in, sizeof (in)), (long) sizeof (in));
  check ("read data sent before close, data", memcmp (in, buf, sizeof (in)), 0);
  check ("read after peer close", vppcom_session_read (a2, in, sizeof (in)), 0);
  check ("read after peer close, again", vppcom_session_read (a2, in, sizeof (in)), 0);
  check ("close a2", vppcom_session_close (a2), 0);

  /* terminate: the peer sees a reset */
  a2 = pair (ls, port, &c2);
  check ("terminate", vppcom_session_terminate (c2), 0);
  check ("read after peer terminate", vppcom_session_read (a2, in, sizeof (in)),
	 VPPCOM_ECONNRESET);
  check ("close after reset", vppcom_session_close (a2), 0);
  /* upstream counts an accepted session down only when it disconnects it, not on a reset */
  differs ("n_accepted after closing a reset session", vppcom_session_n_accepted (ls), 0, 1);
  check ("close terminated (upstream frees it on close)", vppcom_session_close (c2), 0);

  /* non-blocking connect that succeeds: EINPROGRESS, then EPOLLOUT */
  c2 = vppcom_session_create (VPPCOM_PROTO_TCP, 1);
  make_ep (&ep, ip, port);
  check ("nonblocking connect", vppcom_session_connect (c2, &ep), VPPCOM_EINPROGRESS);
  ev.events = EPOLLOUT;
  ev.data.u32 = c2;
  check ("epoll_ctl ADD connecting", vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, c2, &ev), 0);
  rv = vppcom_epoll_wait (vep, evs, 8, 5000);
  check ("epoll_wait connected", rv, 1);
  if (rv == 1)
    {
      check ("epoll_wait connected events", evs[0].events, EPOLLOUT);
      check ("epoll_wait connected data", evs[0].data.u32, c2);
    }
  check ("get_error connected", vppcom_session_get_error (c2), 0);
  a2 = vppcom_session_accept (ls, NULL, 0);
  check_true ("accept nonblocking-connected", a2 >= 0);
  check ("write nonblocking-connected", vppcom_session_write (c2, (void *) "nb", 2), 2);
  check ("read from nonblocking-connected", read_n (a2, in, 2), 2);
  check ("close nb client", vppcom_session_close (c2), 0);
  check ("close nb accepted", vppcom_session_close (a2), 0);

  /* connect to a port nobody listens on */
  c2 = vppcom_session_create (VPPCOM_PROTO_TCP, 0);
  make_ep (&ep, ip, refused_port);
  check ("connect refused", vppcom_session_connect (c2, &ep), VPPCOM_ECONNREFUSED);
  check ("get_error refused", vppcom_session_get_error (c2), VPPCOM_ECONNREFUSED);
  check ("connect refused, again", vppcom_session_connect (c2, &ep), VPPCOM_ECONNREFUSED);
  check ("close refused", vppcom_session_close (c2), 0);

  c2 = vppcom_session_create (VPPCOM_PROTO_TCP, 1);
  check ("nonblocking connect refused", vppcom_session_connect (c2, &ep), VPPCOM_EINPROGRESS);
  ev.events = EPOLLOUT;
  ev.data.u32 = c2;
  check ("epoll_ctl ADD refused", vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, c2, &ev), 0);
  rv = vppcom_epoll_wait (vep, evs, 8, 5000);
  check ("epoll_wait refused", rv, 1);
  if (rv == 1)
    {
      check ("epoll_wait refused events", evs[0].events, EPOLLOUT | EPOLLHUP);
      check ("epoll_wait refused data", evs[0].data.u32, c2);
    }
  check ("get_error nonblocking refused", vppcom_session_get_error (c2), VPPCOM_ECONNREFUSED);
  check ("close nonblocking refused", vppcom_session_close (c2), 0);

  check ("close vep", vppcom_session_close (vep), 0);
  /* a listener cannot be terminated (it stays listening) */
  rv = vppcom_session_terminate (ls);
  check ("terminate listener", rv, VPPCOM_EBADFD);
  if (rv == VPPCOM_EBADFD)
    {
      /* upstream still counts the reset session (above) */
      check ("n_accepted after terminate attempt", vppcom_session_n_accepted (ls), UPSTREAM);
      check ("close listener", vppcom_session_close (ls), 0);
    }
  if (!UPSTREAM) /* hardening: upstream crashes (a reset reply for the unbound listener) */
    check ("close listener twice", vppcom_session_close (ls), VPPCOM_EBADFD);
  c2 = vppcom_session_create (VPPCOM_PROTO_TCP, 0);
  make_ep (&ep, ip, port);
  check ("connect after listener closed", vppcom_session_connect (c2, &ep),
	 VPPCOM_ECONNREFUSED);
  vppcom_session_close (c2);
}

int
main (int argc, char **argv)
{
  int rv, port, refused;

  if (argc < 3)
    {
      fprintf (stderr, "usage: session_check LISTEN_PORT REFUSED_PORT\n");
      return 2;
    }
  setvbuf (stdout, NULL, _IOLBF, 0); /* every line out, even if the library crashes */
  port = atoi (argv[1]);
  refused = atoi (argv[2]);
  alarm (60); /* a hang is a failure, not a stuck CI job */
  print_library ();
  rv = vppcom_app_create ("session_check");
  check ("app_create", rv, 0);
  if (rv)
    {
      printf ("%d passed, %d failed\n", n_pass, n_fail);
      return 1;
    }
  bad_handles ();
  unconnected ();
  sessions (port, refused);
  vppcom_app_destroy ();
  printf ("%d passed, %d failed, %d known differences\n", n_pass, n_fail, n_diff);
  return n_fail ? 1 : 0;
}
