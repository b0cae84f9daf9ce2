/* vcl_workers: attach, register one VCL worker per thread (as Envoy does), show each worker's
 * index and mq epoll fd, unregister, detach. Uses only vppcom.h. */
#include <vcl/vppcom.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>

static int failures;

static void *
worker (void *arg)
{
  long n = (long) arg;
  int rv = vppcom_worker_register ();
  if (rv)
    {
      printf ("thread %ld: register failed: %s\n", n, vppcom_retval_str (rv));
      __atomic_add_fetch (&failures, 1, __ATOMIC_RELAXED);
      return NULL;
    }
  printf ("thread %ld: worker %d, mqs epfd %d, detached %d\n", n, vppcom_worker_index (),
	  vppcom_worker_mqs_epfd (), vppcom_worker_is_detached ());
  vppcom_worker_unregister ();
  return NULL;
}

int
main (int argc, char **argv)
{
  int i, n = argc > 1 ? atoi (argv[1]) : 4, rv;
  pthread_t t[64];

  if (n < 1 || n > 64)
    n = 4;
  rv = vppcom_app_create ("vcl_workers");
  if (rv)
    {
      printf ("attach failed: %d (%s)\n", rv, vppcom_retval_str (rv));
      return 1;
    }
  printf ("main: worker %d\n", vppcom_worker_index ());
  for (i = 0; i < n; i++)
    pthread_create (&t[i], NULL, worker, (void *) (long) i);
  for (i = 0; i < n; i++)
    pthread_join (t[i], NULL);
  vppcom_app_destroy ();
  printf ("%d workers registered, %d failed\n", n - failures, failures);
  return failures ? 1 : 0;
}
