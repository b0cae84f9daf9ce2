/* vcl_echo_client: connect to IP PORT, send N messages of SIZE bytes one at a time, check each
 * echo byte for byte, print the round-trip figures. Uses only vppcom.h.
 * usage: vcl_echo_client IP PORT [N=1000] [SIZE=1024] */
#include <vcl/vppcom.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double
now (void)
{
  struct timespec ts;
  clock_gettime (CLOCK_MONOTONIC, &ts);
  return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int
die (const char *what, int rv)
{
  fprintf (stderr, "vcl_echo_client: %s: %d (%s)\n", what, rv, vppcom_retval_str (rv));
  return 1;
}

int
main (int argc, char **argv)
{
  uint8_t ip[4];
  int port, n, size, sh, rv, i, got, w;
  char *out, *in;
  vppcom_endpt_t e;
  double t0, t1;

  if (argc < 3 || inet_pton (AF_INET, argv[1], ip) != 1)
    {
      fprintf (stderr, "usage: vcl_echo_client IP PORT [N] [SIZE]\n");
      return 2;
    }
  port = atoi (argv[2]);
  n = argc > 3 ? atoi (argv[3]) : 1000;
  size = argc > 4 ? atoi (argv[4]) : 1024;
  out = malloc (size);
  in = malloc (size);
  if ((rv = vppcom_app_create ("vcl_echo_client")))
    return die ("app create", rv);
  if ((sh = vppcom_session_create (VPPCOM_PROTO_TCP, 0)) < 0)
    return die ("session create", sh);
  memset (&e, 0, sizeof (e));
  e.is_ip4 = 1;
  e.ip = ip;
  e.port = htons (port);
  if ((rv = vppcom_session_connect (sh, &e)))
    return die ("connect", rv);

  t0 = now ();
  for (i = 0; i < n; i++)
    {
      int k;
      for (k = 0; k < size; k++)
	out[k] = (char) (i * 31 + k);
      for (w = 0; w < size;)
	{
	  rv = vppcom_session_write (sh, out + w, size - w);
	  if (rv < 0)
	    return die ("write", rv);
	  w += rv;
	}
      for (got = 0; got < size;)
	{
	  rv = vppcom_session_read (sh, in + got, size - got);
	  if (rv <= 0)
	    return die ("read", rv);
	  got += rv;
	}
      if (memcmp (in, out, size))
	{
	  fprintf (stderr, "vcl_echo_client: echo %d differs\n", i);
	  return 1;
	}
    }
  t1 = now ();
  printf ("vcl_echo_client: %d echoes of %d bytes ok, %.1f us per round trip, %.2f MB/s\n", n,
	  size, (t1 - t0) / n * 1e6, 2.0 * n * size / (t1 - t0) / 1e6);
  vppcom_session_close (sh);
  vppcom_app_destroy ();
  return 0;
}
