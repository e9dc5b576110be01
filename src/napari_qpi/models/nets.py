"""Networks: the stage-1 kernel VAE, the stage-2 observation encoder, and the
one-step baseline (the same encoder trained end to end with its own decoder).

Sized for a laptop CPU: 0.5–0.8 M parameters per network, 65-px kernels, a
64-dimensional latent.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .features import IMAGE_SIZE, anchor_kernel, crop_to, observation_features, pad_to
from .layers import ImageEncoder, UpConv2d, block


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of every network; stored beside the weights."""

    kernel_size: int = 65
    latent_dim: int = 64
    widths: tuple[int, ...] = (24, 48, 64, 64)
    map_widths: tuple[int, ...] = (16, 32, 64)
    #: the guide (Wiener kernel) through its own trunk, initialised from stage 1's
    #: kernel encoder, instead of sharing the spectrum's (q-space) convolutions
    guide_branch: bool = True
    head_width: int = 96
    #: the power-spectrum kernel estimate as an input, through its own trunk
    #: initialised from stage 1's kernel encoder (issue 11: never below ``power``)
    power_branch: bool = True
    #: decode on the map's own power spectrum (issue 11): the data give the kernel's
    #: magnitude in q-space, the latent its phase (sign, asymmetry) and a gain, so the
    #: decoder holds any kernel at least as well as the power spectrum shows it
    anchor: bool = True
    #: stage 1's encoder reads the map's power kernel beside the kernel: the latent that
    #: decodes best depends on the anchor it is decoded on (docs/models.md, "What limits
    #: the foreign maps"), so stage 2 is aligned to that latent
    anchored_encoder: bool = False

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        # sets saved before these fields existed
        d = {"guide_branch": False, "head_width": 128, "power_branch": False,
             "anchor": False, **d}
        d["widths"] = tuple(d["widths"])
        d["map_widths"] = tuple(d["map_widths"])
        return cls(**d)


class KernelDecoder(nn.Module):
    """Latent (B, d) → kernel (B, k, k), or (B, channels, 80, 80) from :meth:`grid`."""

    def __init__(self, cfg: ModelConfig, channels: int = 1) -> None:
        super().__init__()
        w = cfg.widths
        self.k = cfg.kernel_size
        self.fc = nn.Linear(cfg.latent_dim, w[-1] * 25)
        ups, c = [], w[-1]
        # each ×2 step upsamples inside its first convolution (UpConv2d); the
        # Identity placeholders keep the layer indices of the weight files, saved when
        # the upsampling was a layer of its own
        for wo in reversed(w[1:-1]):  # 5 → 10 → 20
            ups += [nn.Identity(), block(c, wo, up=True)]
            c = wo
        # 20 → 40 with one conv, then 40 → 80 by sub-pixel shuffle: full resolution
        # without convolutions at 80×80, which would dominate the cost on a CPU
        ups += [nn.Identity(), UpConv2d(c, w[0]), nn.SiLU(),
                nn.Conv2d(w[0], 4 * channels, 3, padding=1), nn.PixelShuffle(2)]
        self.up = nn.Sequential(*ups)  # 5 → 80
        self.c0 = w[-1]

    def grid(self, z: torch.Tensor) -> torch.Tensor:
        return self.up(self.fc(z).view(-1, self.c0, 5, 5))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return crop_to(self.grid(z), self.k)[:, 0]


#: Side of the anchored decoder's q-grid: the decoder's native output.
QGRID = 80


class AnchoredDecoder(nn.Module):
    """Latent (B, d) and the map's power kernel (B, k, k) → kernel (B, k, k).

    K̂(q) = |P̂(q)| · c(q): the magnitude comes from the map's power kernel P (what the
    data show for any scatterer layout), the complex factor c from the latent (phase —
    sign changes, asymmetry, off-centre sites — and a gain that corrects the noisy
    magnitude). The last layer starts at zero, so an untrained decoder returns P itself.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.k = cfg.kernel_size
        self.base = KernelDecoder(cfg, channels=2)
        # the factor sees the magnitude too, so it can place sign changes on its rings
        self.mix = nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.SiLU(),
                                 nn.Conv2d(16, 2, 3, padding=1))
        nn.init.zeros_(self.mix[-1].weight)
        nn.init.zeros_(self.mix[-1].bias)
        self.c = (QGRID - self.k) // 2 + self.k // 2  # the kernel centre on the grid

    def magnitude(self, anchor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The anchor's q-space magnitude on the decoder's grid and its standardised
        logarithm (the mix's third input): what :meth:`forward` needs of the anchor,
        to compute once where many latents are decoded on one anchor."""
        c = self.c
        p = torch.roll(pad_to(anchor[:, None], QGRID)[:, 0], (-c, -c), (-2, -1))
        mag = torch.fft.fftshift(torch.fft.fft2(p).abs(), dim=(-2, -1))
        logm = torch.log(mag + 1e-3 * mag.flatten(1).amax(1)[:, None, None] + 1e-12)
        logm = (logm - logm.mean((-2, -1), keepdim=True)) / (
            logm.std((-2, -1), keepdim=True) + 1e-6)
        return mag, logm

    def forward(self, z: torch.Tensor, anchor: torch.Tensor,
                magnitude: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        c = self.c
        mag, logm = self.magnitude(anchor) if magnitude is None else magnitude
        if len(z) != len(mag):  # several latents per map: the magnitude once per map
            reps = len(z) // len(mag)
            if reps * len(mag) != len(z):
                raise ValueError(f"{len(z)} latents for {len(anchor)} anchors: pass one "
                                 "anchor per latent, or n latents per anchor in tiled order")
            mag, logm = mag.repeat(reps, 1, 1), logm.repeat(reps, 1, 1)
        d = self.mix(torch.cat([self.base.grid(z), logm[:, None]], 1))
        spec = torch.complex(mag * (1 + d[:, 0]), mag * d[:, 1])
        spec = torch.fft.ifftshift(spec, dim=(-2, -1))
        kern = torch.roll(torch.fft.ifft2(spec).real, (c, c), (-2, -1))
        return crop_to(kern, self.k)


def _anchor(cfg: ModelConfig, maps: torch.Tensor) -> torch.Tensor | None:
    """The maps' power kernels for an anchored decoder, else None."""
    return anchor_kernel(maps, cfg.kernel_size) if cfg.anchor else None


def _decode(decoder: nn.Module, cfg: ModelConfig, z: torch.Tensor,
            anchor: torch.Tensor | None) -> torch.Tensor:
    """Either decoder kind on latents ``z``: anchored on ``anchor``, or the plain one
    (its output scaled by 1/10, as trained)."""
    if not cfg.anchor:
        return decoder(z) / 10.0
    if anchor is None:
        raise ValueError("this weight set decodes on the map's power kernel: "
                         "pass anchor=vae.anchor_of(maps)")
    return decoder(z, anchor)


class KernelVAE(nn.Module):
    """Stage 1: a VAE whose latent space holds physically valid kernels."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        if cfg.anchored_encoder and not cfg.anchor:
            raise ValueError("anchored_encoder=True needs anchor=True (the map's power kernel)")
        self.cfg = cfg
        self.encoder = ImageEncoder(2 if cfg.anchored_encoder else 1, cfg.widths)
        self.head = nn.Linear(self.encoder.out_features, 2 * cfg.latent_dim)
        self.decoder = AnchoredDecoder(cfg) if cfg.anchor else KernelDecoder(cfg)

    def encode(self, kernel: torch.Tensor, anchor: torch.Tensor | None = None,
               ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, k, k) unit-norm kernels → posterior mean and log-variance (B, d); a set
        with ``anchored_encoder`` also reads the power kernels (B, k, k) of their maps
        (:meth:`anchor_of`), which other sets ignore."""
        x = kernel[:, None]
        if self.cfg.anchored_encoder:
            if anchor is None:
                raise ValueError("this weight set encodes a kernel with its map's power "
                                 "kernel: pass anchor=vae.anchor_of(maps)")
            x = torch.cat([x, anchor[:, None]], 1)
        h = self.encoder(pad_to(x * 10.0, IMAGE_SIZE))
        mu, logvar = self.head(h).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 6)

    def anchor_of(self, maps: torch.Tensor) -> torch.Tensor | None:
        """What :meth:`decode` needs for (B, H, W) maps: their power kernels when the
        decoder is anchored, else None."""
        return _anchor(self.cfg, maps)

    def decoder_on(self, anchor: torch.Tensor | None):
        """``z ↦ decode(z, anchor)`` with the anchor's q-space magnitude computed once:
        for a fit that decodes new latents on the same maps at every step."""
        if not self.cfg.anchor or anchor is None:  # nothing to keep (or decode's error)
            return lambda z: self.decode(z, anchor)
        with torch.no_grad():
            magnitude = self.decoder.magnitude(anchor)
        return lambda z: self.decoder(z, anchor, magnitude)

    def decode(self, z: torch.Tensor, anchor: torch.Tensor | None = None) -> torch.Tensor:
        """Latents (B, d) → kernels (B, k, k); an anchored VAE needs the maps' power
        kernels (B, k, k) as ``anchor`` (:meth:`anchor_of`). For n latents per map, pass
        z (n·B, d) in tiled order (latent i decodes on anchor i mod B)."""
        return _decode(self.decoder, self.cfg, z, anchor)


class ObservationEncoder(nn.Module):
    """Stage 2 (and the one-step body): observation features → latent posterior.

    Input features (see :mod:`.features`): the Welch power spectrum, the guide (a
    Wiener kernel from known positions, or zeros when blind) with its flag, and the
    z-scored map itself through a fully convolutional branch with global pooling, so
    any map size works.
    """

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.image = ImageEncoder(1 if cfg.guide_branch else 3, cfg.widths)
        extra = 0
        if cfg.guide_branch:
            self.guide = ImageEncoder(1, cfg.widths)
            extra = self.guide.out_features + 1  # guide features and the guided flag
        if cfg.power_branch:
            self.power = ImageEncoder(1, cfg.widths)
            extra += self.power.out_features
        # 4×4 patches first: the spectrum branch carries the fine detail, this branch
        # the sign and real-space texture, cheaply for maps up to 256 px
        layers, c = [nn.Conv2d(1, cfg.map_widths[0], 4, stride=4), nn.SiLU()], cfg.map_widths[0]
        for w in cfg.map_widths[1:]:
            layers.append(block(c, w))
            c = w
        self.map = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.Linear(self.image.out_features + extra + 2 * c, cfg.head_width), nn.SiLU(),
            nn.Linear(cfg.head_width, 2 * cfg.latent_dim),
        )

    def forward(self, image: torch.Tensor, maps: torch.Tensor):
        m = self.map(maps[:, None])
        pooled = torch.cat([m.mean((-2, -1)), m.amax((-2, -1))], dim=1)
        if self.cfg.guide_branch:
            feats = [self.image(image[:, :1]), self.guide(image[:, 1:2]), image[:, 2, 0, :1]]
        else:
            feats = [self.image(image[:, :3])]
        if self.cfg.power_branch:
            feats.append(self.power(image[:, 3:4]))
        mu, logvar = self.head(torch.cat([*feats, pooled], 1)).chunk(2, dim=1)
        return mu, logvar.clamp(-12, 6)

    def encode_observations(self, y: torch.Tensor, guide: torch.Tensor | None,
                            power: torch.Tensor | None = None):
        """(B, H, W) maps and optional (B, H, W) scatterer maps → (mu, logvar).

        ``power``: the maps' power kernels if already at hand (an anchored decoder's
        ``anchor_of(y)``, the same numbers), so they are not computed twice.
        """
        if self.cfg.power_branch and power is None:
            power = anchor_kernel(y, self.cfg.kernel_size)
        image, maps = observation_features(y, guide, self.cfg.kernel_size,
                                           power=power if self.cfg.power_branch else None)
        return self(image, maps)


class OneStep(nn.Module):
    """Baseline: the same encoder and a decoder of the same size, trained end to end."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.encoder = ObservationEncoder(cfg)
        self.decoder = AnchoredDecoder(cfg) if cfg.anchor else KernelDecoder(cfg)

    def forward(self, y: torch.Tensor, guide: torch.Tensor | None) -> torch.Tensor:
        anchor = _anchor(self.cfg, y)
        mu, _ = self.encoder.encode_observations(y, guide, anchor)
        return _decode(self.decoder, self.cfg, mu, anchor)


def count_parameters(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
