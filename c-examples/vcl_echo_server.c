/* vcl_echo_server: accept TCP sessions on PORT and echo what they send, driven by
 * vppcom_epoll_wait. Uses only vppcom.h.   usage: vcl_echo_server PORT [MAX_SESSIONS]
 * Exits after MAX_SESSIONS sessions have come and gone (0: serve forever). */
#include <vcl/vppcom.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_EVENTS 64

static int
die (const char *what, int rv)
{
  fprintf (stderr, "vcl_echo_server: %s: %d (%s)\n", what, rv, vppcom_retval_str (rv));
  return 1;
}

/* Echo everything readable now; returns <0 when the session is done. */
static int
echo (uint32_t sh, char *buf, size_t len, unsigned long long *bytes)
{
  for (;;)
    {
      int n = vppcom_session_read (sh, buf, len), off = 0;
      if (n == VPPCOM_EAGAIN)
	return 0;
      if (n <= 0)
	return -1;
      while (off < n)
	{
	  int w = vppcom_session_write (sh, buf + off, n - off);
	  if (w == VPPCOM_EAGAIN)
	    continue;
	  if (w < 0)
	    return -1;
	  off += w;
	}
      *bytes += n;
    }
}

int
main (int argc, char **argv)
{
  uint8_t ip[4] = { 0, 0, 0, 0 }, peer_ip[16];
  int port = argc > 1 ? atoi (argv[1]) : 9000, max = argc > 2 ? atoi (argv[2]) : 0;
  int rv, ls, ep, done = 0, open = 0, i;
  unsigned long long bytes = 0;
  static char buf[65536];
  struct epoll_event ev, evs[MAX_EVENTS];
  vppcom_endpt_t e;

  if ((rv = vppcom_app_create ("vcl_echo_server")))
    return die ("app create", rv);
  if ((ls = vppcom_session_create (VPPCOM_PROTO_TCP, 1)) < 0)
    return die ("session create", ls);
  memset (&e, 0, sizeof (e));
  e.is_ip4 = 1;
  e.ip = ip;
  e.port = htons (port);
  if ((rv = vppcom_session_bind (ls, &e)) || (rv = vppcom_session_listen (ls, 10)))
    return die ("bind/listen", rv);
  if ((ep = vppcom_epoll_create ()) < 0)
    return die ("epoll create", ep);
  memset (&ev, 0, sizeof (ev));
  ev.events = EPOLLIN;
  ev.data.u32 = ls;
  if ((rv = vppcom_epoll_ctl (ep, EPOLL_CTL_ADD, ls, &ev)))
    return die ("epoll ctl listener", rv);
  printf ("vcl_echo_server: listening on port %d\n", port);
  fflush (stdout);

  while (!max || done < max)
    {
      int n = vppcom_epoll_wait (ep, evs, MAX_EVENTS, 1000);
      if (n < 0)
	return die ("epoll wait", n);
      for (i = 0; i < n; i++)
	{
	  uint32_t sh = evs[i].data.u32;
	  if (sh == (uint32_t) ls)
	    {
	      memset (&e, 0, sizeof (e));
	      e.ip = peer_ip;
	      int cs = vppcom_session_accept (ls, &e, O_NONBLOCK);
	      if (cs < 0)
		continue;
	      ev.events = EPOLLIN | EPOLLRDHUP;
	      ev.data.u32 = cs;
	      vppcom_epoll_ctl (ep, EPOLL_CTL_ADD, cs, &ev);
	      open++;
	      continue;
	    }
	  /* a closed peer reads as 0 once its data is drained; a reset as an error */
	  if (echo (sh, buf, sizeof (buf), &bytes) < 0 || (evs[i].events & EPOLLERR))
	    {
	      vppcom_epoll_ctl (ep, EPOLL_CTL_DEL, sh, NULL);
	      vppcom_session_close (sh);
	      open--;
	      done++;
	    }
	}
    }
  printf ("vcl_echo_server: %d sessions served, %llu bytes echoed\n", done, bytes);
  vppcom_session_close (ls);
  vppcom_app_destroy ();
  return 0;
}
