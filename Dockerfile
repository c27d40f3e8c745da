# mrirecon on a CUDA PyTorch base image.
#
#   docker build -t mrirecon .
#   docker run --rm --gpus all -v "$PWD:/data" mrirecon reconstruct scan.h5 --accel 4 -o recon
#
# The container runs as the unprivileged user "mrirecon" in /data: mount your scans there
# (inputs and outputs are paths relative to /data). The base image's PyTorch (CUDA 12.4) is kept;
# pip installs only mrirecon and its other dependencies. Nothing is downloaded at run time.
FROM pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /opt/mrirecon
COPY pyproject.toml README.md ./
COPY mrirecon ./mrirecon
COPY masks ./masks
RUN python -m pip install ".[plots]" \
    && python -c "import torch, mrirecon; print('torch', torch.__version__, 'mrirecon', mrirecon.__version__)" \
    && mrirecon --version

RUN useradd --create-home --uid 1000 mrirecon && mkdir -p /data && chown mrirecon /data
USER mrirecon
WORKDIR /data
VOLUME ["/data"]

ENTRYPOINT ["mrirecon"]
CMD ["--help"]
