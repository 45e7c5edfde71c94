"""The one production gunicorn configuration (`make run` and containers use it).

Sizes come from the environment with small defaults: cpu_count() sees the host's CPUs in a container.
"""
import os

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("LABINTERP_WORKERS", os.environ.get("WEB_CONCURRENCY", "2")))
threads = int(os.environ.get("LABINTERP_THREADS", "1"))
worker_class = "sync"
preload_app = True  # knowledge and pint factors are built once, then shared copy-on-write
timeout = int(os.environ.get("LABINTERP_TIMEOUT", "30"))
graceful_timeout = int(os.environ.get("LABINTERP_GRACEFUL_TIMEOUT", "30"))
keepalive = 2
max_requests = int(os.environ.get("LABINTERP_MAX_REQUESTS", "0"))
max_requests_jitter = max_requests // 10
control_socket_disable = True  # its default path breaks non-root containers without a writable HOME
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
accesslog = "-"  # method, path, status, size, duration: never a request body
errorlog = "-"
loglevel = os.environ.get("LABINTERP_LOG_LEVEL", "info").lower()
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms rid=%({x-request-id}o)s'
limit_request_line = 4094
limit_request_fields = 100
