/* TLS/DTLS/QUIC entry points with bad input, checked against VPP v26.06's VCL return codes:
 * cert/key pair attributes, listens and connects VPP's TLS and DTLS refuse, stream_connect on
 * what is not a QUIC connection. Run against the in-process test peer (tests/cabi_sessions.rs), which
 * refuses ext configs as VPP's tls.c and quic.c do. Usage: secure_check PORT PORT2 */
#pragma GCC diagnostic ignored "-Wunused-function" /* helpers this check does not need */
#include "check_util.h"

static int
set_ckpair (int sh, uint32_t idx, uint32_t len)
{
  return vppcom_session_attr (sh, VPPCOM_ATTR_SET_CKPAIR, &idx, &len);
}

static int
listen_on (uint8_t proto, int ck, int port)
{
  uint8_t ip[4] = { 127, 0, 0, 1 };
  vppcom_endpt_t ep;
  int ls = vppcom_session_create (proto, 0);

  if (ck >= 0)
    check ("listener set_ckpair", set_ckpair (ls, ck, sizeof (uint32_t)), 0);
  make_ep (&ep, ip, port);
  check ("listener bind", vppcom_session_bind (ls, &ep), 0);
  return vppcom_session_listen (ls, 10) ? -1 : ls;
}

static int
connect_to (int sh, int port)
{
  uint8_t ip[4] = { 127, 0, 0, 1 };
  vppcom_endpt_t ep;
  make_ep (&ep, ip, port);
  return vppcom_session_connect (sh, &ep);
}

static void
ckpair_attrs (void)
{
  char ext[8] = "abcdefg";
  uint32_t idx = 1, len = 3;
  int tcp = vppcom_session_create (VPPCOM_PROTO_TCP, 0);
  int tls = vppcom_session_create (VPPCOM_PROTO_TLS, 0);
  int quic = vppcom_session_create (VPPCOM_PROTO_QUIC, 0);
  int dtls = vppcom_session_create (VPPCOM_PROTO_DTLS, 0);

  check ("set_ckpair on tcp", set_ckpair (tcp, 1, sizeof (uint32_t)), VPPCOM_EINVAL);
  check ("set_ckpair short buflen", set_ckpair (tls, 1, 2), VPPCOM_EINVAL);
  check ("set_ckpair null buffer",
	 vppcom_session_attr (tls, VPPCOM_ATTR_SET_CKPAIR, NULL, &len), VPPCOM_EINVAL);
  check ("set_ckpair null buflen",
	 vppcom_session_attr (tls, VPPCOM_ATTR_SET_CKPAIR, &idx, NULL), VPPCOM_EINVAL);
  check ("set_ckpair tls", set_ckpair (tls, 1, sizeof (uint32_t)), 0);
  check ("set_ckpair tls again", set_ckpair (tls, 2, sizeof (uint32_t)), 0);
  check ("set_ckpair quic", set_ckpair (quic, 1, sizeof (uint32_t)), 0);
  check ("set_ckpair dtls", set_ckpair (dtls, 1, sizeof (uint32_t)), 0);
  len = sizeof (ext);
  check ("ext_cfg after ckpair",
	 vppcom_session_attr (tls, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, ext, &len), VPPCOM_EINVAL);
  len = sizeof (ext);
  check ("ext_cfg on tcp", vppcom_session_attr (tcp, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, ext, &len), 0);
  len = 0;
  check ("ext_cfg empty", vppcom_session_attr (quic, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, ext, &len),
	 VPPCOM_EINVAL);
  len = sizeof (ext);
  {
    int t2 = vppcom_session_create (VPPCOM_PROTO_TLS, 0);
    check ("ext_cfg tls", vppcom_session_attr (t2, VPPCOM_ATTR_SET_ENDPT_EXT_CFG, ext, &len), 0);
    check ("set_ckpair after a raw ext_cfg", set_ckpair (t2, 1, sizeof (uint32_t)),
	   VPPCOM_EINVAL);
    vppcom_session_close (t2);
  }
  check ("is_stream tcp", vppcom_session_is_stream (tcp), 0);
  check ("is_stream quic unconnected", vppcom_session_is_stream (quic), 0);
  check ("is_connectable_listener tcp", vppcom_session_is_connectable_listener (tcp), 0);
  check ("is_connectable_listener bad", vppcom_session_is_connectable_listener (0xdead), 0);
  vppcom_session_close (tcp);
  vppcom_session_close (tls);
  vppcom_session_close (quic);
  vppcom_session_close (dtls);
}

static void
refused (int port, int port2)
{
  int tls, ls, t, s, q, a;

  /* VPP's TLS wants a crypto ext config (SESSION_E_NOEXTCFG) */
  tls = vppcom_session_create (VPPCOM_PROTO_TLS, 0);
  check ("tls connect without ckpair", connect_to (tls, port), VPPCOM_ECONNREFUSED);
  vppcom_session_close (tls);
  check ("tls listen without ckpair", listen_on (VPPCOM_PROTO_TLS, -1, port), -1);
  /* a cert/key pair VPP does not have: the engine cannot start the listener */
  check ("tls listen bad ckpair", listen_on (VPPCOM_PROTO_TLS, 4242, port), -1);

  /* a TLS client reaching a TCP listener: the handshake fails */
  ls = listen_on (VPPCOM_PROTO_TCP, -1, port);
  check_true ("tcp listen", ls >= 0);
  tls = vppcom_session_create (VPPCOM_PROTO_TLS, 0);
  check ("set_ckpair client", set_ckpair (tls, 0, sizeof (uint32_t)), 0);
  check ("tls to a tcp listener", connect_to (tls, port), VPPCOM_ECONNREFUSED);
  /* upstream maps any VPP reason but REFUSED and PORTINUSE to EFAULT */
  check ("get_error after handshake failure", vppcom_session_get_error (tls), VPPCOM_EFAULT);
  vppcom_session_close (tls);

  /* streams: VPP refuses them on TCP (SESSION_E_TRANSPORT_NO_REG), QUIC on a non-QUIC parent */
  t = vppcom_session_create (VPPCOM_PROTO_TCP, 0);
  check ("tcp connect", connect_to (t, port), 0);
  /* take it off the listener: upstream crashes closing a listener with a pending accept */
  a = vppcom_session_accept (ls, NULL, 0);
  check_true ("tcp accept", a >= 0);
  s = vppcom_session_create (VPPCOM_PROTO_TCP, 0);
  check ("stream_connect tcp on tcp", vppcom_session_stream_connect (s, t), VPPCOM_ECONNREFUSED);
  q = vppcom_session_create (VPPCOM_PROTO_QUIC, 0);
  check ("stream_connect quic on tcp", vppcom_session_stream_connect (q, t), VPPCOM_ECONNREFUSED);
  check ("stream_connect bad parent", vppcom_session_stream_connect (q, 0xdead), VPPCOM_EBADFD);
  check ("stream_connect bad session", vppcom_session_stream_connect (0xdead, t), VPPCOM_EBADFD);
  check ("is_stream after refused stream", vppcom_session_is_stream (q), 1);
  vppcom_session_close (q);
  if (!UPSTREAM) /* upstream sends on the parent's null queue and crashes */
    {
      int p = vppcom_session_create (VPPCOM_PROTO_QUIC, 0);
      q = vppcom_session_create (VPPCOM_PROTO_QUIC, 0);
      check ("stream_connect on an unconnected parent", vppcom_session_stream_connect (q, p),
	     VPPCOM_ENOTCONN);
      vppcom_session_close (q);
      vppcom_session_close (p);
    }
  vppcom_session_close (s);
  vppcom_session_close (t);
  vppcom_session_close (a);
  vppcom_session_close (ls);

  /* a QUIC connect with no QUIC listener there, and with no ext config */
  q = vppcom_session_create (VPPCOM_PROTO_QUIC, 0);
  check ("quic connect without ckpair", connect_to (q, port2), VPPCOM_ECONNREFUSED);
  vppcom_session_close (q);
}

/* DTLS refusals, as for TLS: no ext config, a pair VPP does not have, a handshake with a
 * listener whose pair was deleted. Then DTLS is a datagram session: one read = one datagram. */
static void
dtls_refused (int port)
{
  static const char pem_cert[] = "-----BEGIN CERTIFICATE-----\nx\n-----END CERTIFICATE-----\n";
  static const char pem_key[] = "-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n";
  vppcom_cert_key_pair_t ck;
  char buf[64];
  int d, ls, ckp;

  d = vppcom_session_create (VPPCOM_PROTO_DTLS, 0);
  check_true ("dtls create", d >= 0);
  check ("dtls connect without ckpair", connect_to (d, port), VPPCOM_ECONNREFUSED);
  check ("dtls read unconnected", vppcom_session_read (d, buf, sizeof (buf)), VPPCOM_ENOTCONN);
  vppcom_session_close (d);
  check ("dtls listen without ckpair", listen_on (VPPCOM_PROTO_DTLS, -1, port), -1);
  check ("dtls listen bad ckpair", listen_on (VPPCOM_PROTO_DTLS, 4242, port), -1);

  memset (&ck, 0, sizeof (ck));
  ck.cert = (char *) pem_cert;
  ck.key = (char *) pem_key;
  ck.cert_len = sizeof (pem_cert) - 1;
  ck.key_len = sizeof (pem_key) - 1;
  ckp = vppcom_add_cert_key_pair (&ck);
  check_true ("add_cert_key_pair", ckp > 0);
  ls = listen_on (VPPCOM_PROTO_DTLS, ckp, port);
  check_true ("dtls listen", ls >= 0);
  check ("del_cert_key_pair", vppcom_del_cert_key_pair (ckp), 0);
  d = vppcom_session_create (VPPCOM_PROTO_DTLS, 0);
  check ("dtls set_ckpair client", set_ckpair (d, 0, sizeof (uint32_t)), 0);
  check ("dtls handshake with a deleted pair", connect_to (d, port), VPPCOM_ECONNREFUSED);
  check ("get_error after dtls handshake failure", vppcom_session_get_error (d), VPPCOM_EFAULT);
  vppcom_session_close (d);
  vppcom_session_close (ls);
}

int
main (int argc, char **argv)
{
  int rv;

  if (argc < 3)
    {
      fprintf (stderr, "usage: secure_check PORT PORT2\n");
      return 2;
    }
  setvbuf (stdout, NULL, _IOLBF, 0);
  alarm (60); /* a hang is a failure, not a stuck CI job */
  print_library ();
  rv = vppcom_app_create ("secure_check");
  check ("app_create", rv, 0);
  if (rv)
    {
      printf ("%d passed, %d failed\n", n_pass, n_fail);
      return 1;
    }
  ckpair_attrs ();
  refused (atoi (argv[1]), atoi (argv[2]));
  dtls_refused (atoi (argv[1]));
  vppcom_app_destroy ();
  printf ("%d passed, %d failed, %d known differences\n", n_pass, n_fail, n_diff);
  return n_fail ? 1 : 0;
}
