# The image that deploy/k8s/values.yaml names: the project's wheel on python:3.11-slim.
#
#   python -m pip wheel --no-deps -w dist .
#   docker build -t registry.example.com/brain-assets:0.1.0 .
#
# The wheel carries the migrations and the Dagster YAML files (see setup.py), so the image needs
# no checkout; brain_assets_tests/e2e/test_wheel.py builds and installs the same wheel the same way.
# constraints.txt (`make constraints`) holds the versions the test suite passed with; the extras
# are the exchange fetch and the LSTM (tensorflow-cpu on x86_64, tensorflow on arm64).
FROM python:3.11-slim

ENV PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    BRAIN_HOME=/var/lib/brain

COPY dist/brain_assets-*.whl /tmp/wheels/
COPY constraints.txt /tmp/constraints.txt
# dagster-k8s at the 0.29 line that pairs with Dagster 1.13, for the run launcher of the chart.
RUN python -m pip install -c /tmp/constraints.txt \
        "$(ls /tmp/wheels/brain_assets-*.whl)[exchange,lstm]" "dagster-k8s==0.29.*" \
    && rm -rf /tmp/wheels /tmp/constraints.txt \
    && useradd --create-home --uid 10001 brain \
    && mkdir -p /var/lib/brain \
    && chown brain /var/lib/brain

USER brain
WORKDIR /home/brain
EXPOSE 3000
# The chart overrides the command (code server, webserver, daemon); alone, the image checks itself.
CMD ["brain", "verify"]
