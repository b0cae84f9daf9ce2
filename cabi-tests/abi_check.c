/* ABI check of vcl's vppcom.h against VPP v26.06's (x86_64): layouts, constants, and every
 * export called with bad input while no app is attached. Builds as C and as C++. */
#include <vcl/vppcom.h>

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef __cplusplus
#define STATIC_ASSERT(c) static_assert (c, #c)
#else
#define STATIC_ASSERT(c) _Static_assert (c, #c)
#endif

#define OFF(t, f, o) STATIC_ASSERT (offsetof (t, f) == (o))

/* layouts */
STATIC_ASSERT (sizeof (vppcom_endpt_t) == 48);
OFF (vppcom_endpt_t, unused, 0);
OFF (vppcom_endpt_t, is_ip4, 1);
OFF (vppcom_endpt_t, ip, 8);
OFF (vppcom_endpt_t, port, 16);
OFF (vppcom_endpt_t, unused2, 24);
OFF (vppcom_endpt_t, app_tlv_len, 32);
OFF (vppcom_endpt_t, app_tlvs, 40);
STATIC_ASSERT (sizeof (vppcom_endpt_tlv_t) == 8);
OFF (vppcom_endpt_tlv_t, data_type, 0);
OFF (vppcom_endpt_tlv_t, data_len, 4);
OFF (vppcom_endpt_tlv_t, data, 8);
STATIC_ASSERT (sizeof (vppcom_cert_key_pair_t) == 24);
OFF (vppcom_cert_key_pair_t, cert, 0);
OFF (vppcom_cert_key_pair_t, key, 8);
OFF (vppcom_cert_key_pair_t, cert_len, 16);
OFF (vppcom_cert_key_pair_t, key_len, 20);
STATIC_ASSERT (sizeof (vcl_poll_t) == 12);
OFF (vcl_poll_t, fds_ndx, 0);
OFF (vcl_poll_t, sh, 4);
OFF (vcl_poll_t, events, 8);
OFF (vcl_poll_t, revents, 10);
STATIC_ASSERT (sizeof (vppcom_data_segment_t) == 16);
OFF (vppcom_data_segment_t, data, 0);
OFF (vppcom_data_segment_t, len, 8);
STATIC_ASSERT (sizeof (vppcom_data_segments_t) == 32);
STATIC_ASSERT (sizeof (vcl_session_handle_t) == 4);
STATIC_ASSERT (sizeof (vcl_si_set) == sizeof (unsigned long));
STATIC_ASSERT (sizeof (vppcom_cfg_t) == 144);
OFF (vppcom_cfg_t, heapsize, 0);
OFF (vppcom_cfg_t, max_workers, 8);
OFF (vppcom_cfg_t, segment_baseva, 16);
OFF (vppcom_cfg_t, segment_size, 24);
OFF (vppcom_cfg_t, add_segment_size, 32);
OFF (vppcom_cfg_t, preallocated_fifo_pairs, 40);
OFF (vppcom_cfg_t, rx_fifo_size, 44);
OFF (vppcom_cfg_t, tx_fifo_size, 48);
OFF (vppcom_cfg_t, event_queue_size, 52);
OFF (vppcom_cfg_t, app_proxy_transport_tcp, 56);
OFF (vppcom_cfg_t, app_proxy_transport_udp, 57);
OFF (vppcom_cfg_t, app_scope_local, 58);
OFF (vppcom_cfg_t, app_scope_global, 59);
OFF (vppcom_cfg_t, namespace_id, 64);
OFF (vppcom_cfg_t, namespace_secret, 72);
OFF (vppcom_cfg_t, use_mq_eventfd, 80);
OFF (vppcom_cfg_t, app_timeout, 88);
OFF (vppcom_cfg_t, session_timeout, 96);
OFF (vppcom_cfg_t, event_log_path, 104);
OFF (vppcom_cfg_t, vpp_app_socket_api, 112);
OFF (vppcom_cfg_t, vpp_bapi_socket_name, 120);
OFF (vppcom_cfg_t, app_name, 128);
OFF (vppcom_cfg_t, tls_engine, 136);
OFF (vppcom_cfg_t, mt_wrk_supported, 140);
OFF (vppcom_cfg_t, huge_page, 141);
OFF (vppcom_cfg_t, app_original_dst, 142);
OFF (vppcom_cfg_t, debug_level, 143);

/* constants, as upstream spells them */
STATIC_ASSERT (INVALID_SESSION_ID == 0xFFFFFFFFu);
STATIC_ASSERT (VPPCOM_PROTO_TCP == 0 && VPPCOM_PROTO_UDP == 1 && VPPCOM_PROTO_NONE == 2);
STATIC_ASSERT (VPPCOM_PROTO_TLS == 3 && VPPCOM_PROTO_QUIC == 4 && VPPCOM_PROTO_DTLS == 5);
STATIC_ASSERT (VPPCOM_PROTO_SRTP == 6 && VPPCOM_PROTO_HTTP == 7);
STATIC_ASSERT (VPPCOM_IS_IP6 == 0 && VPPCOM_IS_IP4 == 1);
STATIC_ASSERT (VPPCOM_OK == 0);
STATIC_ASSERT (VPPCOM_EAGAIN == -EAGAIN && VPPCOM_EWOULDBLOCK == -EWOULDBLOCK);
STATIC_ASSERT (VPPCOM_EINPROGRESS == -EINPROGRESS && VPPCOM_EFAULT == -EFAULT);
STATIC_ASSERT (VPPCOM_ENOMEM == -ENOMEM && VPPCOM_EINVAL == -EINVAL);
STATIC_ASSERT (VPPCOM_EBADFD == -EBADFD && VPPCOM_EAFNOSUPPORT == -EAFNOSUPPORT);
STATIC_ASSERT (VPPCOM_ECONNABORTED == -ECONNABORTED && VPPCOM_ECONNRESET == -ECONNRESET);
STATIC_ASSERT (VPPCOM_ENOTCONN == -ENOTCONN && VPPCOM_ECONNREFUSED == -ECONNREFUSED);
STATIC_ASSERT (VPPCOM_ETIMEDOUT == -ETIMEDOUT && VPPCOM_EEXIST == -EEXIST);
STATIC_ASSERT (VPPCOM_ENOPROTOOPT == -ENOPROTOOPT && VPPCOM_EPIPE == -EPIPE);
STATIC_ASSERT (VPPCOM_ENOENT == -ENOENT && VPPCOM_EADDRINUSE == -EADDRINUSE);
STATIC_ASSERT (VPPCOM_ENOTSUP == -ENOTSUP);
STATIC_ASSERT (VPPCOM_ATTR_GET_NREAD == 0 && VPPCOM_ATTR_SET_LCL_ADDR == 5);
STATIC_ASSERT (VPPCOM_ATTR_GET_UNUSED == 7 && VPPCOM_ATTR_GET_PROTOCOL == 9);
STATIC_ASSERT (VPPCOM_ATTR_GET_TCP_USER_MSS == 32 && VPPCOM_ATTR_SET_TCP_USER_MSS == 33);
STATIC_ASSERT (VPPCOM_ATTR_SET_CONNECTED == 34 && VPPCOM_ATTR_SET_CKPAIR == 35);
STATIC_ASSERT (VPPCOM_ATTR_SET_VRF == 36 && VPPCOM_ATTR_GET_DOMAIN == 38);
STATIC_ASSERT (VPPCOM_ATTR_SET_ENDPT_EXT_CFG == 39 && VPPCOM_ATTR_SET_DSCP == 40);
STATIC_ASSERT (VPPCOM_ATTR_GET_ORIGINAL_DST == 43 && VPPCOM_ATTR_GET_NWRITEQ == 44);
STATIC_ASSERT (VPPCOM_ATTR_GET_EXT_ENDPT == 45 && VPPCOM_ATTR_SET_COOKIE == 47);
STATIC_ASSERT (VPPCOM_ATTR_GET_STREAM_FLAGS == 48 && VPPCOM_ATTR_SET_STREAM_FLAGS == 49);
STATIC_ASSERT (VPPCOM_ATTR_GET_APP_PROTO_ERR_CODE == 50);
STATIC_ASSERT (VPPCOM_ATTR_SET_APP_PROTO_ERR_CODE == 51);
STATIC_ASSERT (VPPCOM_STREAM_F_UNIDIRECTIONAL == 1);
STATIC_ASSERT (VCL_UDP_OPTS_BASE == 65536 && VCL_UDP_SEGMENT == 65536);
STATIC_ASSERT (VCL_IP_OPTS_BASE == (127 << 16) && VCL_IP_PKTINFO == 8323073);

static int n_pass, n_fail;

static void
check (const char *what, long got, long want)
{
  if (got == want)
    n_pass++;
  else
    {
      n_fail++;
      fprintf (stderr, "FAIL %s: got %ld, want %ld\n", what, got, want);
    }
}

static void
check_str (const char *what, const char *got, const char *want)
{
  check (what, strcmp (got, want), 0);
  if (strcmp (got, want))
    fprintf (stderr, "  '%s' vs '%s'\n", got, want);
}

static void
strings_and_handles (void)
{
  uint8_t proto = 0xff;
  char tcp[] = "tcp", quic[] = "QUIC", bad[] = "Tcp";

  check_str ("proto_str TCP", vppcom_proto_str (VPPCOM_PROTO_TCP), "TCP");
  check_str ("proto_str HTTP", vppcom_proto_str (VPPCOM_PROTO_HTTP), "HTTP");
  check_str ("proto_str NONE", vppcom_proto_str (VPPCOM_PROTO_NONE), "UNKNOWN");
  check_str ("proto_str 99", vppcom_proto_str ((vppcom_proto_t) 99), "UNKNOWN");
  check_str ("retval_str OK", vppcom_retval_str (VPPCOM_OK), "VPPCOM_OK");
  check_str ("retval_str EBADFD", vppcom_retval_str (VPPCOM_EBADFD), "VPPCOM_EBADFD");
  check_str ("retval_str EWOULDBLOCK", vppcom_retval_str (VPPCOM_EWOULDBLOCK), "VPPCOM_EAGAIN");
  check_str ("retval_str 12345", vppcom_retval_str (12345), "UNKNOWN_STATE");
  check ("unformat tcp", vppcom_unformat_proto (&proto, tcp), 0);
  check ("unformat tcp value", proto, VPPCOM_PROTO_TCP);
  check ("unformat QUIC", vppcom_unformat_proto (&proto, quic), 0);
  check ("unformat QUIC value", proto, VPPCOM_PROTO_QUIC);
  check ("unformat Tcp", vppcom_unformat_proto (&proto, bad), 1);
  check ("unformat null", vppcom_unformat_proto (NULL, tcp), 1);
  check ("session_index", vppcom_session_index (0x05123456u), 0x123456);
  check ("session_worker", vppcom_session_worker (0x05123456u), 5);
  check ("session_worker max", vppcom_session_worker (0xFF000000u), 255);
}

static void
bad_input_without_app (void)
{
  char buf[16];
  uint32_t len = sizeof (buf);
  struct epoll_event ev;
  vppcom_endpt_t ep;
  vppcom_data_segment_t ds[2];
  vcl_poll_t vp;
  vcl_si_set rd = 0;
  vppcom_cert_key_pair_t ck;
  const uint32_t sh = 7;

  memset (&ep, 0, sizeof (ep));
  memset (&ev, 0, sizeof (ev));
  memset (ds, 0, sizeof (ds));
  memset (&vp, 0, sizeof (vp));
  memset (&ck, 0, sizeof (ck));
  ds[0].data = (unsigned char *) buf;
  ds[0].len = 4;

  check ("worker_index", vppcom_worker_index (), -1);
  check ("session_create", vppcom_session_create (VPPCOM_PROTO_TCP, 0), VPPCOM_EBADFD);
  check ("epoll_create", vppcom_epoll_create (), VPPCOM_EBADFD);
  check ("close", vppcom_session_close (sh), VPPCOM_EBADFD);
  check ("shutdown", vppcom_session_shutdown (sh, 2), VPPCOM_EBADFD);
  check ("terminate", vppcom_session_terminate (sh), VPPCOM_EBADFD);
  check ("bind null ep", vppcom_session_bind (sh, NULL), VPPCOM_EINVAL);
  check ("bind null ip", vppcom_session_bind (sh, &ep), VPPCOM_EINVAL);
  ep.ip = (uint8_t *) buf;
  check ("bind", vppcom_session_bind (sh, &ep), VPPCOM_EBADFD);
  check ("listen", vppcom_session_listen (sh, 10), VPPCOM_EBADFD);
  check ("accept", vppcom_session_accept (sh, &ep, 0), VPPCOM_EBADFD);
  check ("connect", vppcom_session_connect (sh, &ep), VPPCOM_EBADFD);
  check ("stream_connect", vppcom_session_stream_connect (sh, 8), VPPCOM_EBADFD);
  check ("read null", vppcom_session_read (sh, NULL, 4), VPPCOM_EFAULT);
  check ("read", vppcom_session_read (sh, buf, 4), VPPCOM_EBADFD);
  check ("write null (unknown session first, as upstream)", vppcom_session_write (sh, NULL, 4), VPPCOM_EBADFD);
  check ("write", vppcom_session_write (sh, buf, 4), VPPCOM_EBADFD);
  check ("write_msg null", vppcom_session_write_msg (sh, NULL, 4), VPPCOM_EBADFD);
  check ("write_msg", vppcom_session_write_msg (sh, buf, 4), VPPCOM_EBADFD);
  check ("recvfrom bad flags", vppcom_session_recvfrom (sh, buf, 4, 0x40, NULL),
	 VPPCOM_EAFNOSUPPORT);
  check ("recvfrom", vppcom_session_recvfrom (sh, buf, 4, 0, &ep), VPPCOM_EBADFD);
  check ("sendto", vppcom_session_sendto (sh, buf, 4, 0, &ep), VPPCOM_EBADFD);
  check ("read_segments", vppcom_session_read_segments (sh, ds, 2, 100), VPPCOM_EBADFD);
  check ("write_segments null", vppcom_session_write_segments (sh, NULL, 1), VPPCOM_EFAULT);
  check ("write_segments", vppcom_session_write_segments (sh, ds, 1), VPPCOM_EBADFD);
  vppcom_session_free_segments (sh, 4);
  check ("epoll_ctl same", vppcom_epoll_ctl (sh, EPOLL_CTL_ADD, sh, &ev), VPPCOM_EINVAL);
  check ("epoll_ctl", vppcom_epoll_ctl (sh, EPOLL_CTL_ADD, 8, &ev), VPPCOM_EBADFD);
  check ("epoll_wait maxevents", vppcom_epoll_wait (sh, &ev, 0, 0), VPPCOM_EINVAL);
  check ("epoll_wait", vppcom_epoll_wait (sh, &ev, 1, 0), VPPCOM_EBADFD);
  check ("select", vppcom_select (8, &rd, NULL, NULL, 0), VPPCOM_EBADFD);
  check ("poll null", vppcom_poll (NULL, 1, 0), VPPCOM_EFAULT);
  check ("poll", vppcom_poll (&vp, 1, 0), VPPCOM_EBADFD);
  check ("attr", vppcom_session_attr (sh, VPPCOM_ATTR_GET_NREAD, buf, &len), VPPCOM_EBADFD);
  check ("is_stream (0 for unknown, as upstream)", vppcom_session_is_stream (sh), 0);
  check ("is_connectable_listener", vppcom_session_is_connectable_listener (sh), 0);
  check ("listener", vppcom_session_listener (sh), VPPCOM_EBADFD);
  check ("n_accepted", vppcom_session_n_accepted (sh), VPPCOM_EBADFD);
  check ("get_error", vppcom_session_get_error (sh), VPPCOM_EBADFD);
  check ("mq_epoll_fd", vppcom_mq_epoll_fd (), -1);
  check ("worker_mqs_epfd", vppcom_worker_mqs_epfd (), -1);
  /* upstream says ENOTSUP without use-mq-eventfd; we answer in every mode: no worker = 1 */
  check ("worker_is_detached", vppcom_worker_is_detached (), 1);
  check ("worker_register", vppcom_worker_register (), VPPCOM_EEXIST);
  vppcom_worker_unregister ();
  vppcom_worker_index_set (3);
  check ("worker_index_set", vppcom_worker_index (), 3);
  vppcom_worker_index_set (-1);
  check ("add_cert_key_pair null", vppcom_add_cert_key_pair (NULL), VPPCOM_EINVAL);
  check ("add_cert_key_pair", vppcom_add_cert_key_pair (&ck) < 0, 1);
  check ("del_cert_key_pair", vppcom_del_cert_key_pair (3) < 0, 1);
  vppcom_app_destroy (); /* nothing to destroy: a no-op */
}

static void
app_create_failures (const char *dir)
{
  char path[512], conf[600];
  FILE *f;
  vppcom_cfg_t cfg;

  /* an explicitly named config file that does not exist */
  snprintf (path, sizeof (path), "%s/no-such-vcl.conf", dir);
  setenv ("VCL_CONFIG", path, 1);
  check ("create, missing explicit config", vppcom_app_create ("t"), VPPCOM_ENOENT);

  /* a malformed value */
  snprintf (path, sizeof (path), "%s/bad.conf", dir);
  f = fopen (path, "w");
  fputs ("vcl {\n  rx-fifo-size lots\n}\n", f);
  fclose (f);
  setenv ("VCL_CONFIG", path, 1);
  check ("create, malformed config", vppcom_app_create ("t"), VPPCOM_EINVAL);

  /* no socket at the configured path: upstream's -1 */
  snprintf (path, sizeof (path), "%s/good.conf", dir);
  f = fopen (path, "w");
  snprintf (conf, sizeof (conf), "vcl {\n  app-socket-api %s/no-vpp-here\n}\n", dir);
  fputs (conf, f);
  fclose (f);
  setenv ("VCL_CONFIG", path, 1);
  check ("create, no socket", vppcom_app_create ("t"), -1);

  /* the same through vppcom_cfg_t, abstract socket in Calico's @ form */
  memset (&cfg, 0, sizeof (cfg));
  cfg.vpp_app_socket_api = (char *) "@vcl-abi-check-nobody-listens";
  cfg.rx_fifo_size = cfg.tx_fifo_size = 4000000;
  check ("create_with_config, no socket", vppcom_app_create_with_config (&cfg), -1);
  check ("create_with_config NULL", vppcom_app_create_with_config (NULL), -1);
  unsetenv ("VCL_CONFIG");
}

int
main (int argc, char **argv)
{
  strings_and_handles ();
  bad_input_without_app ();
  app_create_failures (argc > 1 ? argv[1] : "/tmp");
  printf ("%d passed, %d failed\n", n_pass, n_fail);
  return n_fail ? 1 : 0;
}
