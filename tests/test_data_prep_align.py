"""Stage data_prep, alignment: MTCNN's five landmarks, the similarity warp to the template, the fallback crop."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from data_prep.align import TEMPLATE, centre_crop_transform, similarity_transform, template_pixels, warp_images


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 100, (5, 2))
    angle, scale, shift = 0.3, 0.7, np.array([12.0, -4.0])
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rotation.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix, np.hstack([scale * rotation, shift[:, None]]), atol=1e-9)


def test_similarity_transform_never_reflects():
    src = np.array([[0, 0], [3, 0], [1, 2], [0.5, 4], [2, 2.5]], float)  # eyes, nose, mouth-like
    mirrored = src * [-1, 1]
    linear = similarity_transform(src, mirrored)[:, :2]
    assert np.linalg.det(linear) > 0


def test_warp_reproduces_the_centre_crop_of_a_smooth_image():
    # a smooth gradient image: warping must sample it where the transform says
    yy, xx = np.mgrid[0:250, 0:250]
    image = np.stack([xx, yy, (xx + yy) // 2], -1).astype(np.uint8)
    crop = warp_images(torch.as_tensor(image)[None], centre_crop_transform(250, 250, 50)[None], 50)[0].numpy()
    # output pixel u covers input x in [50 + 3u, 50 + 3u + 3): its centre is 51 + 3u
    expected = 51 + 3 * np.arange(50)
    np.testing.assert_allclose(crop[0, 10, :], expected, atol=1)
    np.testing.assert_allclose(crop[1, :, 10], expected, atol=1)


def test_blank_image_falls_back_to_the_centre_crop(aligner):
    image = np.full((250, 250, 3), 128, np.uint8)
    image[100:150, 100:150] = 30
    result = aligner.align(torch.as_tensor(image)[None])
    assert not result.aligned[0]
    assert np.isnan(result.landmarks[0]).all()
    fallback = warp_images(torch.as_tensor(image)[None], centre_crop_transform(250, 250, 64)[None], 64)
    np.testing.assert_array_equal(result.crops[0], fallback[0].numpy())


def redetect_eyes(aligner, crops: np.ndarray) -> np.ndarray:
    """Eye positions re-detected by MTCNN on 3x upsampled crops, in crop pixel coordinates."""
    up = torch.nn.functional.interpolate(torch.as_tensor(crops).float(), scale_factor=3, mode="bicubic")
    up = up.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
    return aligner.detect(up)[:, :2] / 3 - 1 / 3  # pixel centres: x_64 = (x_192 + 0.5) / 3 - 0.5


def test_real_photo_eyes_land_on_the_template():
    skdata = pytest.importorskip("skimage.data")
    from data_prep.align import FaceAligner

    photo = skdata.astronaut()  # 512x512, one face off-centre
    aligner = FaceAligner(size=64, min_face_fraction=0.1)
    result = aligner.align(torch.as_tensor(photo)[None])
    assert result.aligned[0]
    checker = FaceAligner(size=64, min_face_fraction=0.15)
    eyes = redetect_eyes(checker, result.crops)[0]
    distance = np.linalg.norm(eyes - template_pixels(64)[:2], axis=1)
    assert np.all(distance < 2.0), distance


@pytest.mark.slow
def test_aligned_lfw_faces_match_the_template(real_lfw, aligner):
    import io

    from PIL import Image

    from data_prep.sources import iter_images

    images = []
    for item in iter_images(real_lfw):
        images.append(np.asarray(Image.open(io.BytesIO(item.data)).convert("RGB")))
        if len(images) == 48:
            break
    result = aligner.align(torch.as_tensor(np.stack(images)))
    assert result.aligned.mean() >= 0.95
    eyes = redetect_eyes(aligner, result.crops[result.aligned])
    found = ~np.isnan(eyes).any(axis=(1, 2))
    error = np.linalg.norm(eyes[found] - template_pixels(64)[:2], axis=2)
    assert np.median(error) < 1.5
    # and the plain centre crop is clearly worse: alignment does something
    plain = warp_images(torch.as_tensor(np.stack(images)), np.stack([centre_crop_transform(250, 250, 64)] * 48), 64)
    plain_eyes = redetect_eyes(aligner, plain.numpy())
    assert np.nanstd(plain_eyes[:, 0, 0]) > np.nanstd(eyes[found][:, 0, 0])
    assert TEMPLATE.shape == (5, 2)
