"""EmoGen (Goyal et al., 2023; sahilg06/EmoGen): Wav2Lip with a 6-class emotion embedding,
the whole face re-synthesised, an emotion discriminator and a VGG19 perceptual loss."""
