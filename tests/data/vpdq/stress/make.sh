#!/bin/sh
# Remake the videos of this folder: FFmpeg's own test pattern (testsrc2),
# encoded by Debian 12's ffmpeg 5.1 to stress sampled decoding
# (hashing/video.c, decode_sampled): B-frames as references, open groups
# of pictures, a variable frame rate, 29.97 fps, HEVC, VP9 with hidden
# alt-ref frames, MPEG-4 part 2 in AVI, and an MPEG-TS stream without
# container indexes.  Generated here; no licence restricts them.
set -e
cd "$(dirname "$0")"
S="-f lavfi -i testsrc2=size=128x96:rate=30:duration=6 -pix_fmt yuv420p -an"
ffmpeg -v error -y $S -c:v libx264 -preset fast -bf 3 \
    -x264-params keyint=15:min-keyint=15:b-pyramid=normal:scenecut=0 bframes-pyramid.mp4
ffmpeg -v error -y $S -c:v libx264 -preset fast -bf 2 \
    -x264-params keyint=20:min-keyint=20:open-gop=1:scenecut=0 open-gop.mp4
ffmpeg -v error -y -f lavfi -i testsrc2=size=128x96:rate=30:duration=6 \
    -vf "select='not(mod(n\,5))+not(mod(n\,7))+lt(n\,40)'" -fps_mode vfr -pix_fmt yuv420p -an \
    -c:v libx264 -preset fast -bf 2 -x264-params keyint=25 vfr.mp4
ffmpeg -v error -y -f lavfi -i testsrc2=size=128x96:rate=30000/1001:duration=6 -pix_fmt yuv420p \
    -an -c:v libx264 -preset fast -bf 3 -x264-params keyint=40 ntsc-29.97.mp4
ffmpeg -v error -y $S -c:v libx265 -preset fast -x265-params keyint=30:bframes=4:log-level=error \
    hevc.mp4
ffmpeg -v error -y $S -c:v libvpx-vp9 -b:v 150k -g 30 -auto-alt-ref 1 -lag-in-frames 16 \
    vp9-altref.webm
ffmpeg -v error -y $S -c:v mpeg4 -bf 2 -g 24 -q:v 12 mpeg4-bframes.avi
ffmpeg -v error -y $S -c:v libx264 -preset fast -bf 3 -x264-params keyint=12:open-gop=1 \
    -f mpegts ts-open-gop.ts
