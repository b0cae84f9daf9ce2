/* vcl_udp_echo: a UDP echo server and client over VCL. Uses only vppcom.h.
 *   vcl_udp_echo server PORT cl|connected N
 *     cl: one connectionless session answers every sender (recvfrom, then sendto the sender);
 *     connected: VPPCOM_ATTR_SET_CONNECTED on the listener, one accepted session per sender
 *     (epoll, read, write). Exits after echoing N datagrams.
 *   vcl_udp_echo client IP PORT [N=1000] [SIZE=512]
 *     a connected session sends N datagrams of SIZE bytes one at a time, each numbered, and
 *     checks every echo whole (one read = one datagram).
 * Over cut-through (both apps app-scope-local) run the server connected: VPP's cut-through
 * gives the server an accepted session per client. */
#include <vcl/vppcom.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

static int
die (const char *what, int rv)
{
  fprintf (stderr, "vcl_udp_echo: %s: %d (%s)\n", what, rv, vppcom_retval_str (rv));
  return 1;
}

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
make_ep (vppcom_endpt_t *e, uint8_t *ip, int port)
{
  memset (e, 0, sizeof (*e));
  e->is_ip4 = 1;
  e->ip = ip;
  e->port = htons ((uint16_t) port);
}

static int
serve_cl (int ls, long n)
{
  static char buf[65536];
  uint8_t rip[16];
  vppcom_endpt_t from;
  long done = 0;
  int rv;

  while (done < n)
    {
      memset (&from, 0, sizeof (from));
      from.ip = rip;
      rv = vppcom_session_recvfrom (ls, buf, sizeof (buf), 0, &from);
      if (rv < 0)
	return die ("recvfrom", rv);
      rv = vppcom_session_sendto (ls, buf, rv, 0, &from);
      if (rv < 0)
	return die ("sendto", rv);
      done++;
    }
  printf ("%ld datagrams echoed (connectionless)\n", done);
  return 0;
}

static int
serve_connected (int ls, long n)
{
  static char buf[65536];
  struct epoll_event ev, evs[16];
  vppcom_endpt_t from;
  uint8_t rip[16];
  long done = 0, sessions = 0;
  int vep, k, i, rv, cs;

  vep = vppcom_epoll_create ();
  ev.events = EPOLLIN;
  ev.data.u32 = ls;
  if ((rv = vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, ls, &ev)))
    return die ("epoll_ctl", rv);
  while (done < n)
    {
      k = vppcom_epoll_wait (vep, evs, 16, 1000.0);
      if (k < 0)
	return die ("epoll_wait", k);
      for (i = 0; i < k; i++)
	{
	  if (evs[i].data.u32 == (uint32_t) ls)
	    {
	      from.ip = rip;
	      while ((cs = vppcom_session_accept (ls, &from, O_NONBLOCK)) >= 0)
		{
		  ev.events = EPOLLIN;
		  ev.data.u32 = cs;
		  vppcom_epoll_ctl (vep, EPOLL_CTL_ADD, cs, &ev);
		  sessions++;
		}
	      continue;
	    }
	  while ((rv = vppcom_session_read (evs[i].data.u32, buf, sizeof (buf))) > 0)
	    {
	      if ((rv = vppcom_session_write (evs[i].data.u32, buf, rv)) < 0)
		return die ("write", rv);
	      done++;
	    }
	  if (rv != VPPCOM_EAGAIN) /* the client went away (cut-through tells) */
	    {
	      vppcom_epoll_ctl (vep, EPOLL_CTL_DEL, evs[i].data.u32, 0);
	      vppcom_session_close (evs[i].data.u32);
	    }
	}
    }
  printf ("%ld datagrams echoed on %ld accepted sessions\n", done, sessions);
  return 0;
}

static int
server (int port, const char *mode, long n)
{
  uint8_t any[4] = { 0, 0, 0, 0 };
  vppcom_endpt_t e;
  int ls, rv, connected = !strcmp (mode, "connected");

  ls = vppcom_session_create (VPPCOM_PROTO_UDP, connected);
  if (ls < 0)
    return die ("session_create", ls);
  /* before bind: binding a UDP session listens (as upstream) */
  if (connected && (rv = vppcom_session_attr (ls, VPPCOM_ATTR_SET_CONNECTED, 0, 0)))
    return die ("attr connected", rv);
  make_ep (&e, any, port);
  if ((rv = vppcom_session_bind (ls, &e)))
    return die ("bind", rv);
  if ((rv = vppcom_session_listen (ls, 10)))
    return die ("listen", rv);
  printf ("listening on port %d (udp, %s)\n", port, mode);
  fflush (stdout);
  rv = connected ? serve_connected (ls, n) : serve_cl (ls, n);
  vppcom_session_close (ls);
  return rv;
}

static int
client (uint8_t *ip, int port, int n, int size)
{
  static char out[65536], in[65536];
  vppcom_endpt_t e;
  int sh, rv, i, j;
  double t0;

  sh = vppcom_session_create (VPPCOM_PROTO_UDP, 0);
  make_ep (&e, ip, port);
  if ((rv = vppcom_session_connect (sh, &e)))
    return die ("connect", rv);
  t0 = now ();
  for (i = 0; i < n; i++)
    {
      for (j = 0; j < size; j++)
	out[j] = (char) (i * 31 + j);
      memcpy (out, &i, size >= (int) sizeof (i) ? sizeof (i) : 0);
      if ((rv = vppcom_session_write (sh, out, size)) != size)
	return die ("write", rv);
      if ((rv = vppcom_session_read (sh, in, sizeof (in))) != size)
	return rv < 0 ? die ("read", rv) : die ("datagram split or merged, length", rv);
      if (memcmp (in, out, size))
	return die ("echo differs, datagram", i);
    }
  printf ("%d echoes of %d bytes ok, %.1f us per round trip\n", n, size,
	  (now () - t0) * 1e6 / (n ? n : 1));
  vppcom_session_close (sh);
  return 0;
}

int
main (int argc, char **argv)
{
  uint8_t ip[4];
  int rv;

  if (argc >= 5 && !strcmp (argv[1], "server"))
    {
      if ((rv = vppcom_app_create ("vcl_udp_echo_server")))
	return die ("app_create", rv);
      rv = server (atoi (argv[2]), argv[3], atol (argv[4]));
    }
  else if (argc >= 4 && !strcmp (argv[1], "client") && inet_pton (AF_INET, argv[2], ip) == 1)
    {
      int n = argc > 4 ? atoi (argv[4]) : 1000, size = argc > 5 ? atoi (argv[5]) : 512;
      if (size < 1 || size > 65000)
	return die ("size (1..65000)", -22);
      if ((rv = vppcom_app_create ("vcl_udp_echo_client")))
	return die ("app_create", rv);
      rv = client (ip, atoi (argv[3]), n, size);
    }
  else
    {
      fprintf (stderr, "usage: vcl_udp_echo server PORT cl|connected N\n"
		       "       vcl_udp_echo client IP PORT [N] [SIZE]\n");
      return 2;
    }
  vppcom_app_destroy ();
  return rv;
}
