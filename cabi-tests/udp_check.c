/* UDP API check against VPP v26.06's VCL semantics, with an attached app (VCL_CONFIG given by
 * the caller, global scope): datagram boundaries, recvfrom/sendto on a connectionless listener
 * and bad input (sendto with and without an address where it does not belong, recvfrom with a
 * NULL endpoint or buffer, I/O on sessions VPP does not know). Builds as C and as C++, against
 * libvcl or upstream's libvppcom (-DVCL_CHECK_UPSTREAM, see session_check.c).
 *   usage: udp_check PORT
 * Prints the library, each known difference ("DIFFERS ON PURPOSE ..."), then
 * "N passed, M failed, K known differences"; exits non-zero on any failure. */
#include "check_util.h"

#include <errno.h>

/* vppcom.h has no VPPCOM_EMSGSIZE: libvcl returns the negative errno */
#define VPPCOM_EMSGSIZE_LOCAL (-EMSGSIZE)

static int
wait_dgram (uint32_t sh)
{
  return wait_nread (sh, 1);
}

static void
bad_input (int port)
{
  char buf[64];
  uint8_t ip[4] = { 127, 0, 0, 1 };
  vppcom_endpt_t ep;
  int u, t;

  make_ep (&ep, ip, port);
  u = vppcom_session_create (VPPCOM_PROTO_UDP, 1);
  t = vppcom_session_create (VPPCOM_PROTO_TCP, 1);
  check_true ("udp create", u >= 0);
  /* VPP does not know the session yet: nothing to send on or read from */
  check ("sendto no ep unbound", vppcom_session_sendto (u, buf, 4, 0, NULL), VPPCOM_ENOTCONN);
  check ("write unbound", vppcom_session_write (u, buf, 4), VPPCOM_ENOTCONN);
  check ("write 0 unbound", vppcom_session_write (u, buf, 0), VPPCOM_OK);
  check ("read unbound", vppcom_session_read (u, buf, 4), VPPCOM_ENOTCONN);
  check ("recvfrom unbound", vppcom_session_recvfrom (u, buf, 4, 0, &ep), VPPCOM_ENOTCONN);
  check ("recvfrom null ep unbound", vppcom_session_recvfrom (u, buf, 4, 0, NULL),
	 VPPCOM_ENOTCONN);
  check ("recvfrom null buf", vppcom_session_recvfrom (u, NULL, 4, 0, &ep), VPPCOM_EFAULT);
  check ("recvfrom bad flags", vppcom_session_recvfrom (u, buf, 4, MSG_DONTWAIT, &ep),
	 VPPCOM_EAFNOSUPPORT);
  /* an address only for connectionless sessions */
  check ("sendto ep tcp", vppcom_session_sendto (t, buf, 4, 0, &ep), VPPCOM_EINVAL);
  check ("sendto bad handle", vppcom_session_sendto (0x00abcdef, buf, 4, 0, &ep),
	 VPPCOM_EBADFD);
  check ("close udp", vppcom_session_close (u), VPPCOM_OK);
  check ("close tcp", vppcom_session_close (t), VPPCOM_OK);
}

static void
datagrams (int port)
{
  char out[2000], in[2000];
  uint8_t ip[4] = { 127, 0, 0, 1 }, rip[16];
  vppcom_endpt_t ep, rep;
  int l, c, i, rv, lport = 0;
  uint32_t len;

  for (i = 0; i < (int) sizeof (out); i++)
    out[i] = (char) (i * 7);
  make_ep (&ep, ip, port);
  /* a connectionless listener, a connected client */
  l = vppcom_session_create (VPPCOM_PROTO_UDP, 1);
  check ("bind", vppcom_session_bind (l, &ep), VPPCOM_OK);
  check ("listen", vppcom_session_listen (l, 10), VPPCOM_OK);
  check ("read listener empty", vppcom_session_read (l, in, 4), VPPCOM_EAGAIN);
  c = vppcom_session_create (VPPCOM_PROTO_UDP, 1);
  check ("client blocking", set_nonblocking (c, 0), VPPCOM_OK);
  check ("connect", vppcom_session_connect (c, &ep), VPPCOM_OK);
  check ("sendto ep connected", vppcom_session_sendto (c, out, 4, 0, &ep), VPPCOM_EINVAL);
  memset (&rep, 0, sizeof (rep));
  rep.ip = rip;
  len = sizeof (rep);
  rv = vppcom_session_attr (c, VPPCOM_ATTR_GET_LCL_ADDR, &rep, &len);
  check ("client lcl addr", rv, VPPCOM_OK);
  lport = ntohs (rep.port);

  /* one read = one datagram; a short buffer truncates, the rest is dropped */
  check ("write 1000", vppcom_session_write (c, out, 1000), 1000);
  check ("write 10", vppcom_session_write (c, out + 1000, 10), 10);
  check ("nread = first dgram", wait_dgram (l), 1000);
  memset (&rep, 0, sizeof (rep));
  rep.ip = rip;
  check ("recvfrom short buf", vppcom_session_recvfrom (l, in, 100, 0, &rep), 100);
  check_true ("truncated head", !memcmp (in, out, 100));
  check ("recvfrom sender port", ntohs (rep.port), lport);
  check_true ("recvfrom sender ip", rep.is_ip4 && !memcmp (rip, ip, 4));
  check ("next dgram whole", wait_dgram (l), 10);
  check ("recvfrom null ep", vppcom_session_recvfrom (l, in, sizeof (in), 0, NULL), 10);
  check_true ("second dgram", !memcmp (in, out + 1000, 10));
  check ("drained", vppcom_session_recvfrom (l, in, sizeof (in), 0, &rep), VPPCOM_EAGAIN);

  /* peek, then read the same datagram */
  check ("write 50", vppcom_session_write (c, out, 50), 50);
  wait_dgram (l);
  check ("peek", vppcom_session_recvfrom (l, in, sizeof (in), MSG_PEEK, &rep), 50);
  check ("read after peek", vppcom_session_read (l, in, sizeof (in)), 50);

  /* the listener answers the sender it last heard from: sendto with its address, write */
  check ("sendto sender", vppcom_session_sendto (l, out, 20, 0, &rep), 20);
  check ("client reads reply", read_n (c, in, 20), 20);
  check ("write to last sender", vppcom_session_write (l, out, 30), 30);
  check ("client reads 2nd reply", vppcom_session_read (c, in, sizeof (in)), 30);

  /* larger than the fifo can ever hold: EMSGSIZE (upstream: EWOULDBLOCK when non-blocking,
   * a blocking write waits forever) */
  {
    static char big[1 << 20];
    uint32_t sz = 0;
    len = sizeof (sz);
    vppcom_session_attr (l, VPPCOM_ATTR_GET_TX_FIFO_LEN, &sz, &len);
    differs ("write dgram bigger than the fifo", vppcom_session_write (l, big, sz),
	     VPPCOM_EMSGSIZE_LOCAL, VPPCOM_EAGAIN);
  }
  check ("close client", vppcom_session_close (c), VPPCOM_OK);
  check ("close listener", vppcom_session_close (l), VPPCOM_OK);
}

int
main (int argc, char **argv)
{
  int rv, port;

  if (argc < 2)
    {
      fprintf (stderr, "usage: udp_check PORT\n");
      return 2;
    }
  setvbuf (stdout, NULL, _IOLBF, 0);
  port = atoi (argv[1]);
  alarm (60);
  print_library ();
  rv = vppcom_app_create ("udp_check");
  check ("app_create", rv, 0);
  if (rv)
    {
      printf ("%d passed, %d failed\n", n_pass, n_fail);
      return 1;
    }
  bad_input (port);
  datagrams (port);
  vppcom_app_destroy ();
  printf ("%d passed, %d failed, %d known differences\n", n_pass, n_fail, n_diff);
  return n_fail ? 1 : 0;
}
