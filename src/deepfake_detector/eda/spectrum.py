"""Frequency view of images: GAN upsampling and face blending leave periodic traces and missing or
excess high frequencies that show up in the mean log-amplitude spectrum of a class."""

from __future__ import annotations

import numpy as np


def log_amplitude_spectrum(rgb: np.ndarray, centred: bool = True) -> np.ndarray:
    """Log-amplitude of the 2-D FFT of the image's luminance (float32, same H x W).

    The mean is removed so the DC term does not dominate. `centred=False` skips the fftshift; sums
    of many spectra can be shifted once at the end (the shift is linear).
    """
    import cv2

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY).astype(np.float32)
    gray -= gray.mean()
    planes = cv2.dft(gray, flags=cv2.DFT_COMPLEX_OUTPUT)
    amplitude = cv2.magnitude(planes[..., 0], planes[..., 1])
    spectrum = np.log(amplitude + 1e-3)
    return np.fft.fftshift(spectrum) if centred else spectrum


def radial_profile(spectrum: np.ndarray) -> np.ndarray:
    """Azimuthal mean of a centred spectrum by integer radius, from DC (0) to the Nyquist edge."""
    h, w = spectrum.shape
    yy, xx = np.indices((h, w))
    radius = np.hypot(yy - h // 2, xx - w // 2).astype(int)
    limit = min(h, w) // 2
    inside = radius < limit
    sums = np.bincount(radius[inside], weights=spectrum[inside], minlength=limit)
    counts = np.bincount(radius[inside], minlength=limit)
    return sums / np.maximum(counts, 1)
