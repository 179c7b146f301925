"""Operations: metrics, health, backup."""
